"""The search behind the RAVDESS audio recipe (docs/encoders.md, "How the recipe was
chosen"): the CPU-sized audio branch and the LSTM (the library's ``AudioNet``,
``speaker_augment``, ``TemporalNet``, ``fit_sequences``, ``evaluate_sequences``) trained on
actors 01-10 and scored on validation actors 11-14, with options the library does not have
(mixup, ensembles, other LSTM inputs, cross-fitting). Log-mel patches are cached once in
``--cache`` (under a key of the root and its file list; the file account is printed, and
kept in each result line); trained branches are cached beside it, so LSTM variants reuse
them. Caches hold tensors only and are read with ``weights_only=True``.

    python experiments/ravdess_recipe_search.py --tag E0                         # E0
    python experiments/ravdess_recipe_search.py --mixup 0.4 --tag E1             # E1
    python experiments/ravdess_recipe_search.py --stats 1 --tag E2               # E2
    python experiments/ravdess_recipe_search.py --oof 1 --lstm-in logp --tag E3  # E3
    python experiments/ravdess_recipe_search.py --lstm-in both --tag E4          # E4
    python experiments/ravdess_recipe_search.py --seed 1 --lstm-in embed,embed+stats,both+stats --tag E5
    python experiments/ravdess_recipe_search.py --ensemble 3 --lstm-in embed,embed+stats --tag E6
    python experiments/ravdess_recipe_search.py --lstm-in both+stats --tag E7
    python experiments/ravdess_recipe_search.py --lstm-in both+stats --lstm-epochs 10 --seed 0 --tag E8  # and --seed 1
    python experiments/ravdess_recipe_search.py --lstm-in both+stats --late-weight 1,2 --tag E9
    python experiments/ravdess_recipe_search.py --lstm-in both+stats --lstm-members 3 --tag E10
    python experiments/ravdess_recipe_search.py --lstm-in both+stats --ensemble 3 --late-weight 0,2 --tag E11

``--late-weight`` weighs the LSTM loss toward later steps (the library's
``temporal_late_weight``); ``--lstm-members`` averages the posteriors of that many LSTMs
trained with different seeds. E12 onwards validate the library recipe itself (the audio
branch as an ensemble, ``--audio-members``) with ``experiments/ravdess_audio.py --validate``.

``--lstm-in``: ``embed`` (branch embedding), ``logp`` (branch log-posteriors), ``both``
(embedding + log-posteriors), ``+stats`` appends the window's log-mel statistics. Each run
prints one JSON line per LSTM input and appends it to ``--results``. The validation score
is ``lstm_val_clip`` (LSTM answer at the last step); ``branch_val_clip`` averages the
branch's log-posteriors over voiced windows.
"""

import argparse
import functools
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from avemotion.atomic import torch_save_atomic
from avemotion.encoders.corpus_files import printable
from avemotion.encoders.datasets import Corpus, list_corpus
from avemotion.encoders.frontend import PATCH_FRAMES, log_mel, voiced_mask
from avemotion.encoders.loops import _optimiser, evaluate_sequences, fit_sequences, speaker_augment
from avemotion.encoders.media import load_audio
from avemotion.encoders.models import AudioNet, SmallAudio, TemporalNet
from avemotion.encoders.train import TrainConfig

CACHE_FORMAT = 2
"""Caches hold plain tensors, strings and numbers only, read back with ``weights_only=True``
(nothing under ``--cache`` is unpickled); format 1 pickled whole objects and is refused."""
Clip = dict[str, Any]
"""One clip: ``speaker``, ``label`` (class index), log-mel ``patches``, ``voiced`` mask."""


def corpus_key(root: str, corpus: Corpus) -> str:
    """The patch cache's key: the absolute root and every listed clip (path relative to the
    root, size, label, speaker), so that a cache of another root or another file list is
    never reused."""
    base = os.path.abspath(root)
    files = [
        [os.path.relpath(os.path.abspath(it.path), base), os.path.getsize(it.path)]
        + [it.label, it.speaker]
        for it in corpus.items
    ]
    return hashlib.md5(json.dumps([base, files]).encode()).hexdigest()[:10]


def read_cache(path: Path, key: str) -> dict:
    """A cache written by :func:`write_cache` under ``key`` (tensors only, never unpickled)."""
    try:
        data = torch.load(path, weights_only=True)
    except Exception as error:  # noqa: BLE001 - an old pickled cache or a foreign file
        raise SystemExit(
            f"{path}: not a cache of this script's format {CACHE_FORMAT} (an older cache "
            f"pickled objects; delete it to rebuild): {str(error).splitlines()[0]}"
        ) from error
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or data.get("key") != key:
        raise SystemExit(f"{path}: cache of another format or key than {key}; delete it to rebuild")
    return data


def write_cache(path: Path, key: str, **fields: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch_save_atomic({"format": CACHE_FORMAT, "key": key, **fields}, path)


def list_clips(root: str) -> tuple[Corpus, str]:
    """The RAVDESS audio corpus under ``root`` and its cache key; prints its file account
    (every file under the root, kept or skipped with the reason, as ``avemotion extract``)."""
    corpus = list_corpus("ravdess", root, "audio")
    print(corpus.account.summary())
    for line in printable(corpus.account.lines()):
        print(f"  skipped {line}")
    return corpus, corpus_key(root, corpus)


def load(root: str, cache: Path) -> tuple[list[Clip], list[str], str, dict[str, Any]]:
    """Every clip's log-mel patches, voiced mask, label and speaker, the classes, the corpus
    key and the file account (``files``: counts, ``skipped``: one line per file). Patches
    are cached beside ``cache`` under a name with the key (``clips-KEY.pt`` for ``clips.pt``)."""
    corpus, key = list_clips(root)
    account = {"files": corpus.account.counts(), "skipped": corpus.account.lines()}
    path = cache.with_name(f"{cache.stem}-{key}{cache.suffix}")
    if path.exists():
        data = read_cache(path, key)
    else:
        classes = list(corpus.classes)
        patches, labels, voiced = [], [], []
        for it in corpus.items:
            frames = log_mel(load_audio(it.path))
            count = (len(frames) - PATCH_FRAMES) // 10 + 1
            patches.append(frames.unfold(0, PATCH_FRAMES, 10)[:count].transpose(1, 2).contiguous())
            labels.append(classes.index(it.label))
            voiced.append(torch.from_numpy(voiced_mask(patches[-1])))
        data = dict(
            root=os.path.abspath(root),
            classes=classes,
            speakers=[it.speaker for it in corpus.items],
            labels=torch.tensor(labels, dtype=torch.int64),
            patches=patches,
            voiced=voiced,
        )
        write_cache(path, key, **data)
    clips = [
        dict(speaker=s, label=int(y), patches=p, voiced=v.numpy())
        for s, y, p, v in zip(data["speakers"], data["labels"], data["patches"], data["voiced"])
    ]
    return clips, list(data["classes"]), key, account


class MeanTemporal(torch.nn.Module):
    """Several trained LSTMs answering together: per-step log of the mean posterior."""

    def __init__(self, members: list[TemporalNet]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)
        self.head = members[0].head

    def forward(self, steps: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        probs = torch.stack([torch.softmax(n(steps)[0], -1) for n in self.members]).mean(0)
        return probs.log(), None, None


def stats(p: torch.Tensor) -> torch.Tensor:  # [T,96,64] -> [T,128]
    return torch.cat([p.mean(1), p.std(1)], 1)


def actors(span: str) -> set[str]:
    """``"1-10"`` to the RAVDESS speaker names Actor_01 ... Actor_10."""
    first, last = (int(x) for x in span.split("-"))
    return {f"Actor_{i:02d}" for i in range(first, last + 1)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="../shared/data/ravdess-speech-16k")
    ap.add_argument(
        "--cache",
        default="/tmp/avemotion-recipe-search/clips.pt",
        help="patch cache: written as NAME-KEY.pt beside it (KEY: root and file list); "
        "trained branches are cached in its folder",
    )
    ap.add_argument("--results", default="/tmp/avemotion-recipe-search/results.jsonl")
    for flag, default in (
        ("--train", "1-10"), ("--val", "11-14"), ("--seed", 0), ("--epochs", 15),
        ("--frac", 0.3), ("--batch", 128), ("--lr", 3e-3), ("--wd", 1e-3), ("--mixup", 0.0),
        ("--width", 64), ("--dropout", 0.3), ("--ensemble", 1), ("--stats", 0), ("--fmasks", 1),
        ("--fmask-width", 8), ("--ls", 0.1), ("--lstm-epochs", 20), ("--copies", 2),
        ("--lstm-in", "embed"), ("--lstm-hidden", 128), ("--lstm-lr", 3e-3), ("--oof", 0),
        ("--balanced", 0),
    ):  # fmt: skip
        ap.add_argument(flag, type=type(default), default=default)  # int, float or str
    ap.add_argument("--late-weight", default="0", help="comma list of LSTM late-step powers")
    ap.add_argument("--lstm-members", type=int, default=1, help="LSTMs averaged (seeds)")
    ap.add_argument("--tag", default="")
    return ap.parse_args(argv)


def branch_key(a: argparse.Namespace, patches_key: str) -> str:
    """The trained branches' cache key: the patches and every option their training reads."""
    names = "train seed epochs frac batch lr wd mixup width dropout ensemble fmasks fmask_width ls"
    options = [patches_key] + [getattr(a, name) for name in names.split()]
    return hashlib.md5(json.dumps(options).encode()).hexdigest()[:10]


def batch_loss(
    net: AudioNet, x: torch.Tensor, y: torch.Tensor, a: argparse.Namespace, rng: np.random.Generator
) -> torch.Tensor:
    """Label-smoothed cross-entropy of a batch of windows augmented in place by ``--fmasks``
    frequency masks (set to the batch mean), then by a speaker warp and ``--mixup``."""
    for _ in range(a.fmasks):
        w = int(rng.integers(0, a.fmask_width + 1))
        s0 = int(rng.integers(0, 64 - w + 1))
        x[:, :, s0 : s0 + w] = x.mean()
    x = speaker_augment(x, rng)
    loss = functools.partial(F.cross_entropy, label_smoothing=a.ls)
    if a.mixup > 0:
        lam = float(rng.beta(a.mixup, a.mixup))
        perm = torch.randperm(len(x))
        out = net(lam * x + (1 - lam) * x[perm])
        return lam * loss(out, y) + (1 - lam) * loss(out, y[perm])
    return loss(net(x), y)


@dataclass
class Branches:
    """The audio branches of one run's options, cached in ``work`` under their ``key``."""

    a: argparse.Namespace
    n_classes: int
    work: Path
    key: str

    def make_net(self) -> AudioNet:
        """An untrained audio branch of the options' shape."""
        net = AudioNet(self.n_classes, "small")
        if self.a.width != 64:
            net.body = SmallAudio(self.a.width)
        net.body.fc[0].p = self.a.dropout
        return net

    def cached(self, name: str, clips: list[Clip], seed_offset: int = 0) -> list[AudioNet]:
        """The branches trained on ``clips``: read from ``work/NAME-KEY.pt`` if there (state
        dicts, tensors only; the global torch generator left as it was), else trained and saved
        there."""
        path = self.work / f"{name}-{self.key}.pt"
        if not path.exists():
            nets = self.train(clips, seed_offset)
            write_cache(path, self.key, state_dicts=[n.state_dict() for n in nets])
            return nets
        states = read_cache(path, self.key)["state_dicts"]
        with torch.random.fork_rng(devices=[]):
            nets = [self.make_net() for _ in states]
        for net, state in zip(nets, states):
            net.load_state_dict(state)
        return [net.eval() for net in nets]

    def train(self, clips: list[Clip], seed_offset: int = 0) -> list[AudioNet]:
        """``--ensemble`` branches, each epoch trained on random voiced windows of ``clips``."""
        a = self.a
        pairs = np.array([(i, s) for i, c in enumerate(clips) for s in np.flatnonzero(c["voiced"])])
        labels = torch.tensor([c["label"] for c in clips])
        rng = np.random.default_rng(a.seed + seed_offset)
        nets = []
        for member in range(a.ensemble):
            torch.manual_seed(a.seed * 100 + member + seed_offset)
            net = self.make_net()
            per_epoch = int(len(pairs) * a.frac)
            steps = (per_epoch + a.batch - 1) // a.batch
            cfg = TrainConfig(num_epochs=a.epochs, learning_rate=a.lr)
            opt, sched, _ = _optimiser(list(net.parameters()), cfg, steps)
            for g in opt.param_groups:
                g["weight_decay"] = a.wd
            for _epoch in range(a.epochs):
                net.train()
                chosen = pairs[rng.permutation(len(pairs))[:per_epoch]]
                for st in range(0, len(chosen), a.batch):
                    part = chosen[st : st + a.batch]
                    if len(part) < 2:
                        continue
                    x = torch.stack([clips[i]["patches"][s] for i, s in part]).clone()
                    loss = batch_loss(net, x, labels[part[:, 0]], a, rng)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
            net.eval()
            nets.append(net)
        return nets

    def fold_owners(self, train: list[Clip]) -> list[list[AudioNet]]:
        """Cross-fitting (``--oof``): each train clip's LSTM input comes from the branches
        trained on the other half of the train speakers, never on the clip itself."""
        speakers = sorted({c["speaker"] for c in train})
        halves = [set(speakers[0::2]), set(speakers[1::2])]
        fold_nets = []
        for h, half in enumerate(halves):
            fold = [c for c in train if c["speaker"] in half]
            fold_nets.append(self.cached(f"fold{h}", fold, seed_offset=10 + h))
        return [fold_nets[1] if c["speaker"] in halves[0] else fold_nets[0] for c in train]


def mean_log_posterior(nets: list[AudioNet], p: torch.Tensor) -> torch.Tensor:
    """Each window's log-posterior, averaged over the branches of the ensemble."""
    with torch.no_grad():
        return torch.stack([torch.log_softmax(n(p), -1) for n in nets]).mean(0)


def features(p: torch.Tensor, nets: list[AudioNet], mode: str, stats_too: int) -> torch.Tensor:
    """The LSTM input of each window for an ``--lstm-in`` ``mode``; ``stats_too`` (``--stats``)
    appends the log-mel statistics to every mode but ``logp``."""
    with torch.no_grad():
        if mode == "logp":
            return mean_log_posterior(nets, p)
        parts = [n.embed(p) for n in nets]
        if mode.startswith("both"):
            parts.append(mean_log_posterior(nets, p))
        if stats_too or mode.endswith("stats"):
            parts.append(stats(p))
        return torch.cat(parts, 1)


def window_hits(nets: list[AudioNet], clips: list[Clip]) -> tuple[int, int, int]:
    """The branches over the voiced windows of ``clips``: windows right, windows, clips right."""
    right, windows, clips_right = 0, 0, 0
    for c in clips:
        lp = mean_log_posterior(nets, c["patches"][torch.from_numpy(c["voiced"])])
        right += int((lp.argmax(1) == c["label"]).sum())
        windows += len(lp)
        clips_right += int(lp.mean(0).argmax() == c["label"])
    return right, windows, clips_right


def training_sequences(
    a: argparse.Namespace, train: list[Clip], owners: list[list[AudioNet]], mode: str
) -> tuple[list[torch.Tensor], np.ndarray]:
    """Each train clip's LSTM input, then ``--copies`` rounds of speaker-warped views (one
    warp per clip), and their labels."""
    seqs = [features(c["patches"], o, mode, a.stats) for c, o in zip(train, owners)]
    rng = np.random.default_rng(a.seed + 1)
    for _ in range(a.copies):
        for c, o in zip(train, owners):
            view = speaker_augment(c["patches"], rng, per_patch=False)
            seqs.append(features(view, o, mode, a.stats))
    return seqs, np.tile(np.array([c["label"] for c in train]), a.copies + 1)


def fit_lstms(
    a: argparse.Namespace, seqs: list[torch.Tensor], labels: np.ndarray, n_classes: int, late: float
) -> MeanTemporal:
    """``--lstm-members`` LSTMs (one seed each) trained with late-step power ``late``."""
    members = []
    for member in range(a.lstm_members):
        seed = a.seed + 1000 * member
        torch.manual_seed(seed)
        tnet = TemporalNet(n_classes, seqs[0].shape[1], a.lstm_hidden)
        config = TrainConfig(
            num_epochs=a.lstm_epochs,
            batch_size=32,
            seed=seed,
            learning_rate=a.lstm_lr,
            temporal_late_weight=late,
        )
        fit_sequences(tnet, seqs, labels, config)
        members.append(tnet)
    return MeanTemporal(members)


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    clips, classes, patches_key, account = load(a.root, Path(a.cache))
    train = [c for c in clips if c["speaker"] in actors(a.train)]
    val = [c for c in clips if c["speaker"] in actors(a.val)]
    t0 = time.perf_counter()
    branches = Branches(a, len(classes), Path(a.cache).parent, branch_key(a, patches_key))
    nets = branches.cached("branch", train)
    t_branch = time.perf_counter() - t0
    (ww, wn, wc), (trw, trn, _) = window_hits(nets, val), window_hits(nets, train[::7])
    for mode in a.lstm_in.split(","):
        owners = branches.fold_owners(train) if a.oof else [nets] * len(train)
        seqs, labels = training_sequences(a, train, owners, mode)
        val_seqs = [features(c["patches"], nets, mode, a.stats) for c in val]
        for late in (float(x) for x in a.late_weight.split(",")):
            lstm = fit_lstms(a, seqs, labels, len(classes), late)
            m = evaluate_sequences(lstm, val_seqs, np.array([c["label"] for c in val]))
            res = dict(
                tag=a.tag + ":" + mode + (f":late{late:g}" if late else ""),
                args=vars(a),
                branch_train_window=round(trw / trn, 4),
                branch_val_window=round(ww / wn, 4),
                branch_val_clip=round(wc / len(val), 4),
                lstm_val_clip=m["whole_clip"]["accuracy"],
                lstm_val_meanpost=m["whole_clip_mean_posterior"]["accuracy"],
                lstm_val_step=m["per_window"]["accuracy"],
                lstm_val_after=m["after_fraction"],
                t_branch=round(t_branch, 1),
                t_total=round(time.perf_counter() - t0, 1),
                patches_key=patches_key,
                **account,
            )
            print(json.dumps(res))
            with open(a.results, "a") as f:
                f.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()

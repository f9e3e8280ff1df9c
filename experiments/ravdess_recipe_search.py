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
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from avemotion.atomic import torch_save_atomic
from avemotion.encoders.corpus_files import printable
from avemotion.encoders.datasets import Corpus, list_corpus
from avemotion.encoders.frontend import PATCH_FRAMES, log_mel, voiced_mask
from avemotion.encoders.loops import _optimiser, evaluate_sequences, fit_sequences, speaker_augment
from avemotion.encoders.media import load_audio
from avemotion.encoders.models import AudioNet, TemporalNet
from avemotion.encoders.train import TrainConfig

CACHE_FORMAT = 2
"""Caches hold plain tensors, strings and numbers only, read back with ``weights_only=True``
(nothing under ``--cache`` is unpickled); format 1 pickled whole objects and is refused."""


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


def write_cache(path: Path, key: str, **fields) -> None:
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


def load(root: str, cache: Path):
    """Every clip's log-mel patches, voiced mask, label and speaker, the classes, the corpus
    key and the file account (``files``: counts, ``skipped``: one line per file). Patches are
    cached in ``cache``'s folder under a name with the key (``clips-KEY.pt`` for
    ``clips.pt``)."""
    corpus, key = list_clips(root)
    account = {"files": corpus.account.counts(), "skipped": corpus.account.lines()}
    path = cache.with_name(f"{cache.stem}-{key}{cache.suffix}")
    classes = list(corpus.classes)
    if path.exists():
        data = read_cache(path, key)
        clips = [
            dict(speaker=s, label=int(y), patches=p, voiced=v.numpy())
            for s, y, p, v in zip(data["speakers"], data["labels"], data["patches"], data["voiced"])
        ]
        return clips, list(data["classes"]), key, account
    clips = []
    for it in corpus.items:
        frames = log_mel(load_audio(it.path))
        count = (len(frames) - PATCH_FRAMES) // 10 + 1
        patches = frames.unfold(0, PATCH_FRAMES, 10)[:count].transpose(1, 2).contiguous()
        clips.append(
            dict(
                speaker=it.speaker,
                label=classes.index(it.label),
                patches=patches,
                voiced=voiced_mask(patches),
            )
        )
    write_cache(
        path,
        key,
        root=os.path.abspath(root),
        classes=classes,
        speakers=[c["speaker"] for c in clips],
        labels=torch.tensor([c["label"] for c in clips], dtype=torch.int64),
        patches=[c["patches"] for c in clips],
        voiced=[torch.from_numpy(c["voiced"]) for c in clips],
    )
    return clips, classes, key, account


def save_nets(path: Path, key: str, nets) -> None:
    """Trained branches as state dicts (plain tensors)."""
    write_cache(path, key, state_dicts=[n.state_dict() for n in nets])


def load_nets(path: Path, key: str, make_net) -> list:
    """Branches saved by :func:`save_nets`, rebuilt with ``make_net()`` (evaluation mode;
    the global torch generator is left as it was, as when the nets were unpickled)."""
    nets = []
    for state in read_cache(path, key)["state_dicts"]:
        with torch.random.fork_rng(devices=[]):
            net = make_net()
        net.load_state_dict(state)
        net.eval()
        nets.append(net)
    return nets


class MeanTemporal(torch.nn.Module):
    """Several trained LSTMs answering together: per-step log of the mean posterior."""

    def __init__(self, members):
        super().__init__()
        self.members = torch.nn.ModuleList(members)
        self.head = members[0].head

    def forward(self, steps):
        probs = torch.stack([torch.softmax(n(steps)[0], -1) for n in self.members]).mean(0)
        return probs.log(), None, None


def stats(p):  # [T,96,64] -> [T,128]
    return torch.cat([p.mean(1), p.std(1)], 1)


def actors(span: str) -> set[str]:
    """``"1-10"`` to the RAVDESS speaker names Actor_01 ... Actor_10."""
    first, last = (int(x) for x in span.split("-"))
    return {f"Actor_{i:02d}" for i in range(first, last + 1)}


def main(argv: list[str] | None = None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="../shared/data/ravdess-speech-16k")
    ap.add_argument(
        "--cache",
        default="/tmp/avemotion-recipe-search/clips.pt",
        help="patch cache: written as NAME-KEY.pt beside it (KEY: root and file list); "
        "trained branches are cached in its folder",
    )
    ap.add_argument("--results", default="/tmp/avemotion-recipe-search/results.jsonl")
    ap.add_argument("--train", default="1-10")
    ap.add_argument("--val", default="11-14")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--frac", type=float, default=0.3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--wd", type=float, default=1e-3)
    ap.add_argument("--mixup", type=float, default=0.0)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--ensemble", type=int, default=1)
    ap.add_argument("--stats", type=int, default=0)
    ap.add_argument("--fmasks", type=int, default=1)
    ap.add_argument("--fmask-width", type=int, default=8)
    ap.add_argument("--ls", type=float, default=0.1)
    ap.add_argument("--lstm-epochs", type=int, default=20)
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--lstm-in", default="embed")
    ap.add_argument("--lstm-hidden", type=int, default=128)
    ap.add_argument("--lstm-lr", type=float, default=3e-3)
    ap.add_argument("--oof", type=int, default=0)
    ap.add_argument("--balanced", type=int, default=0)
    ap.add_argument("--late-weight", default="0", help="comma list of LSTM late-step powers")
    ap.add_argument("--lstm-members", type=int, default=1, help="LSTMs averaged (seeds)")
    ap.add_argument("--tag", default="")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    clips, classes, patches_key, account = load(a.root, Path(a.cache))
    work = Path(a.cache).parent
    tr = [c for c in clips if c["speaker"] in actors(a.train)]
    va = [c for c in clips if c["speaker"] in actors(a.val)]
    t0 = time.perf_counter()

    def make_net():
        """An untrained audio branch of the options' shape."""
        net = AudioNet(len(classes), "small")
        if a.width != 64:
            from avemotion.encoders.models import SmallAudio

            net.body = SmallAudio(a.width)
        net.body.fc[0].p = a.dropout
        return net

    def train_branches(tr, seed_offset=0):
        pairs = np.array([(ci, s) for ci, c in enumerate(tr) for s in np.flatnonzero(c["voiced"])])
        labels = torch.tensor([c["label"] for c in tr])
        rng = np.random.default_rng(a.seed + seed_offset)
        nets = []
        for member in range(a.ensemble):
            torch.manual_seed(a.seed * 100 + member + seed_offset)
            net = make_net()
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
                    x = torch.stack([tr[ci]["patches"][s] for ci, s in part]).clone()
                    for _ in range(a.fmasks):
                        w = int(rng.integers(0, a.fmask_width + 1))
                        s0 = int(rng.integers(0, 64 - w + 1))
                        x[:, :, s0 : s0 + w] = x.mean()
                    x = speaker_augment(x, rng)
                    y = labels[part[:, 0]]
                    if a.mixup > 0:
                        lam = float(rng.beta(a.mixup, a.mixup))
                        perm = torch.randperm(len(x))
                        x = lam * x + (1 - lam) * x[perm]
                        out = net(x)
                        loss = lam * F.cross_entropy(out, y, label_smoothing=a.ls) + (
                            1 - lam
                        ) * F.cross_entropy(out, y[perm], label_smoothing=a.ls)
                    else:
                        loss = F.cross_entropy(net(x), y, label_smoothing=a.ls)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
            net.eval()
            nets.append(net)
        return nets

    key = hashlib.md5(
        json.dumps(
            [
                patches_key,
                a.train,
                a.seed,
                a.epochs,
                a.frac,
                a.batch,
                a.lr,
                a.wd,
                a.mixup,
                a.width,
                a.dropout,
                a.ensemble,
                a.fmasks,
                a.fmask_width,
                a.ls,
            ]
        ).encode()
    ).hexdigest()[:10]
    cache = work / f"branch-{key}.pt"
    if cache.exists():
        nets = load_nets(cache, key, make_net)
    else:
        nets = train_branches(tr)
        save_nets(cache, key, nets)
    t_branch = time.perf_counter() - t0

    def embed(p, nets=nets, mode="embed"):
        with torch.no_grad():
            if mode == "logp":
                return torch.stack([torch.log_softmax(n(p), -1) for n in nets]).mean(0)
            e = [n.embed(p) for n in nets]
            if mode.startswith("both"):
                e.append(torch.stack([torch.log_softmax(n(p), -1) for n in nets]).mean(0))
            if a.stats or mode.endswith("stats"):
                e.append(stats(p))
            return torch.cat(e, 1)

    def logp(p):
        with torch.no_grad():
            return torch.stack([torch.log_softmax(n(p), -1) for n in nets]).mean(0)

    # branch metrics on val
    wc, ww, wn = 0, 0, 0
    for c in va:
        lp = logp(c["patches"][torch.from_numpy(c["voiced"])])
        ww += int((lp.argmax(1) == c["label"]).sum())
        wn += len(lp)
        wc += int(lp.mean(0).argmax() == c["label"])
    trw = 0
    trn = 0
    for c in tr[::7]:
        lp = logp(c["patches"][torch.from_numpy(c["voiced"])])
        trw += int((lp.argmax(1) == c["label"]).sum())
        trn += len(lp)

    def report(mode, late, m):
        res = dict(
            tag=a.tag + ":" + mode + (f":late{late:g}" if late else ""),
            args=vars(a),
            branch_train_window=round(trw / trn, 4),
            branch_val_window=round(ww / wn, 4),
            branch_val_clip=round(wc / len(va), 4),
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

    for mode in a.lstm_in.split(","):
        # LSTM
        if a.oof:
            spk = sorted({c["speaker"] for c in tr})
            halves = [set(spk[0::2]), set(spk[1::2])]
            fold_nets = []
            for h, half in enumerate(halves):
                fk = work / f"fold{h}-{key}.pt"
                if fk.exists():
                    fold_nets.append(load_nets(fk, key, make_net))
                else:
                    fn = train_branches([c for c in tr if c["speaker"] in half], seed_offset=10 + h)
                    save_nets(fk, key, fn)
                    fold_nets.append(fn)
            owner = [fold_nets[1] if c["speaker"] in halves[0] else fold_nets[0] for c in tr]
        else:
            owner = [nets] * len(tr)
        seqs = [embed(c["patches"], o, mode) for c, o in zip(tr, owner)]
        ylab = np.array([c["label"] for c in tr])
        r2 = np.random.default_rng(a.seed + 1)
        views = []
        for _ in range(a.copies):
            for c, o in zip(tr, owner):
                p = speaker_augment(c["patches"], r2, per_patch=False)
                views.append(embed(p, o, mode))
        seqs_all = seqs + views
        y_all = np.tile(ylab, a.copies + 1)
        val_seqs = [embed(c["patches"], nets, mode) for c in va]
        for late in (float(x) for x in a.late_weight.split(",")):
            members = []
            for member in range(a.lstm_members):
                torch.manual_seed(a.seed + 1000 * member)
                tnet = TemporalNet(len(classes), seqs[0].shape[1], a.lstm_hidden)
                fit_sequences(
                    tnet,
                    seqs_all,
                    y_all,
                    TrainConfig(
                        num_epochs=a.lstm_epochs,
                        batch_size=32,
                        seed=a.seed + 1000 * member,
                        learning_rate=a.lstm_lr,
                        temporal_late_weight=late,
                    ),
                )
                members.append(tnet)
            m = evaluate_sequences(
                MeanTemporal(members), val_seqs, np.array([c["label"] for c in va])
            )
            report(mode, late, m)


if __name__ == "__main__":
    main()

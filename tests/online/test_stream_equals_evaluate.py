"""Stream equals evaluate, for every posterior model: a run trained with it streams, its
agent reads at each step the posterior the model gives offline (within 1e-5), and each
clip's decision and step equal ``avemotion evaluate``'s on the clip's store row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avemotion.encoders.bundle import load_encoder
from avemotion.encoders.media import load_audio
from avemotion.evaluation.evaluate import sweep_run
from avemotion.online import OnlineRecognizer
from avemotion.online.observation import run_layout
from avemotion.online.streaming import clip_decisions
from avemotion.posterior import load_posterior_model
from avemotion.posterior.prefix_rocket import rocket_available
from avemotion.store import FeatureStore

POSTERIORS = [
    "running-mean-softmax",
    "prefix-shape-softmax",
    "prefix-nearest-neighbour",
    "store-logits",
    pytest.param(
        "prefix-minirocket",
        marks=pytest.mark.skipif(not rocket_available(), reason="aeon is not installed"),
    ),
]


class WaitingAgent:
    """Never answers while it may wait; records nothing but its calls."""

    obs_mode = "frame"

    def reset(self) -> None:
        pass

    def act(self, observation: np.ndarray, action_mask: np.ndarray) -> int:
        return 0 if action_mask[0] else 1


def train_with(root: Path, store_dir: Path, posterior: str, exclude: tuple = ()) -> Path:
    from avemotion.training.train import train

    return train(
        "dqn", FeatureStore.open(store_dir), 300, 0, root / posterior, posterior=posterior,
        exclude_speakers=list(exclude),
        num_envs=8, learning_starts=64, batch_size=32, hidden=(16,), progress=False,
        log_every=300, allow_untuned=True,  # a 4-clip store tunes nothing; equality is checked
    )  # fmt: skip


def posterior_layout(store: FeatureStore) -> Any:
    """The observation layout of an agent that reads log-posteriors (``frame`` mode)."""
    config = {"agent_config": {"obs_mode": "frame"}, "agent_input": "posteriors",
              "obs_dim": store.n_classes + 1}  # fmt: skip
    return run_layout(config, store)


@pytest.mark.parametrize("posterior", POSTERIORS)
def test_every_posterior_model_streams_as_evaluate_decides(
    posterior: str, audio_run: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    run_dir = train_with(tmp_path_factory.mktemp("runs"), audio_run.store_dir, posterior)
    reads = json.loads((run_dir / "config.json").read_text()).get("agent_input")
    assert reads == (None if posterior == "running-mean-softmax" else "posteriors")
    store = FeatureStore.open(audio_run.store_dir)
    predictions, steps = sweep_run(run_dir, store)
    assert clip_decisions(run_dir, audio_run.clips) == list(zip(predictions, steps))

    # every step of every clip: the posterior the agent reads is the model's offline one
    model = load_posterior_model(run_dir / "posterior.npz")
    offline = model.posteriors(store)
    recognizer = OnlineRecognizer(
        load_encoder(audio_run.encoder_dir), WaitingAgent(), posterior_layout(store),
        "temporal", store.class_names, posterior=model,
    )  # fmt: skip
    for i, clip in enumerate(audio_run.clips):
        recognizer.new_utterance()
        recognizer.feed_audio(load_audio(clip))
        summary = recognizer.finish()
        assert summary["forced"] and summary["steps_encoded"] == store.lengths[i]
        read = np.stack([step.agent_posteriors for step in recognizer.steps])
        rows = slice(offline.offsets[i], offline.offsets[i] + store.lengths[i])
        np.testing.assert_allclose(read, offline.proba[rows], atol=1e-5)


def test_a_posterior_model_of_another_width_is_refused(audio_run: Any, tmp_path: Path) -> None:
    """A posterior model that reads rows of another width than the encoder's level gives
    one clear line before anything streams."""
    from avemotion.posterior import PrefixNearestNeighbour

    store = FeatureStore.open(audio_run.store_dir)
    narrow = FeatureStore.create(
        tmp_path / "narrow", [store.clip(i).frames[:, :3] for i in range(store.n_clips)],
        store.labels, store.speakers, store.class_names,
    )  # fmt: skip
    model = PrefixNearestNeighbour().fit(narrow)
    with pytest.raises(ValueError) as error:
        OnlineRecognizer(
            load_encoder(audio_run.encoder_dir), WaitingAgent(), posterior_layout(store),
            "temporal", store.class_names, posterior=model,
        )  # fmt: skip
    message = str(error.value)
    assert message == (
        "level temporal: the encoder gives 20 values per step, the posterior model reads 3"
    )


RAVDESS_EMOTIONS = {"01": "neutral", "03": "happy", "04": "sad", "05": "angry"}


@pytest.fixture(scope="module")
def ravdess_store(
    ravdess_root: Path, tmp_path_factory: pytest.TempPathFactory, tiny_encoder_config: Any
) -> Any:
    """Real RAVDESS speech: 4 emotions × 2 statements × actors 01, 02 and 03 (24 clips),
    extracted at the temporal level with a tiny seeded audio encoder (the machinery is
    under test, not accuracy)."""
    import torch

    from avemotion.encoders.bundle import build_nets, save_encoder
    from avemotion.encoders.datasets import Item
    from avemotion.encoders.extract import ExtractConfig, encode_clip, store_meta
    from avemotion.encoders.steps import StepConfig

    root = tmp_path_factory.mktemp("ravdess")
    torch.manual_seed(0)
    config = tiny_encoder_config("audio")
    encoder_dir = save_encoder(root / "encoder", config, build_nets(config))
    encoder = load_encoder(encoder_dir)
    items = [
        Item(path, RAVDESS_EMOTIONS[path.name[6:8]], f"Actor_{actor}", path.stem)
        for actor in ("01", "02", "03")
        for path in sorted((ravdess_root / f"Actor_{actor}").glob("03-01-*-01-0?-01-*.flac"))
        if path.name[6:8] in RAVDESS_EMOTIONS
    ]
    assert len(items) == 24, [item.path.name for item in items]
    steps = StepConfig(10.0, 112)
    sequences = [encode_clip(encoder, item, "temporal", steps)[0] for item in items]
    extract_config = ExtractConfig(
        dataset="ravdess", root=str(ravdess_root), encoder=str(encoder_dir),
        out=str(root / "store"), level="temporal",
    )  # fmt: skip
    store = FeatureStore.create(
        root / "store", sequences, [list(RAVDESS_EMOTIONS.values()).index(item.label) for item in items],
        [item.speaker for item in items], list(RAVDESS_EMOTIONS.values()), clip_ids=[item.clip_id for item in items],
        meta=store_meta(extract_config, encoder, None, []),
    )  # fmt: skip
    return store.path, [item.path for item in items]


@pytest.mark.real_data
@pytest.mark.parametrize("posterior", POSTERIORS)
def test_real_ravdess_streams_as_evaluate_decides(
    posterior: str, ravdess_store: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Actors 01 and 02 train, actor 03's 8 clips are streamed and evaluated."""
    store_dir, paths = ravdess_store
    store = FeatureStore.open(store_dir)
    run_dir = train_with(tmp_path_factory.mktemp("runs"), store_dir, posterior, ("Actor_03",))
    test = store.subset(speakers=["Actor_03"])
    predictions, steps = sweep_run(run_dir, test)
    held = [paths[store.clip_ids.index(clip_id)] for clip_id in test.clip_ids]
    assert clip_decisions(run_dir, held) == list(zip(predictions, steps))

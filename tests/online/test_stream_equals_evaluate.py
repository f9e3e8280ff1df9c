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


def train_with(root: Path, store_dir: Path, posterior: str) -> Path:
    from avemotion.training.train import train

    return train(
        "dqn", FeatureStore.open(store_dir), 300, 0, root / posterior, posterior=posterior,
        num_envs=8, learning_starts=64, batch_size=32, hidden=(16,), progress=False,
        log_every=300,
    )  # fmt: skip


def streamed_decisions(run_dir: Path, clips: list[Path]) -> list[tuple[int, int]]:
    """``(prediction, steps observed)`` of each clip streamed alone through the run."""
    recognizer = OnlineRecognizer.from_run(run_dir)
    decisions = []
    for clip in clips:
        recognizer.new_utterance()
        recognizer.feed_audio(load_audio(clip))
        summary = recognizer.finish()
        prediction = recognizer.class_names.index(summary["decision"])
        decisions.append((prediction, summary["decision_step"] + 1))
    recognizer.close()
    return decisions


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
    assert streamed_decisions(run_dir, audio_run.clips) == list(zip(predictions, steps))

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

"""Speaker-state files: step-by-step adaptation equals the store-level transform, the file is
created, updated and reloaded, and bad or mismatched files are refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avemotion.adaptation.estimator import Population, Prior
from avemotion.adaptation.state import SpeakerAdapter, SpeakerState, SpeakerStateError
from avemotion.adaptation.transform import AdaptationSpec, adapt_store
from avemotion.store import FeatureStore


def make_store(path: Path, seed: int, speakers: list[str]) -> FeatureStore:
    rng = np.random.default_rng(seed)
    clips = [
        rng.normal(i % 3, 1.0 + i % 2, size=(int(rng.integers(3, 9)), 4)).astype(np.float32)
        for i in range(len(speakers))
    ]
    return FeatureStore.create(
        path, clips, [i % 2 for i in range(len(clips))], speakers, ["neutral", "happy"]
    )


@pytest.fixture
def adapted(tmp_path: Path) -> tuple[FeatureStore, FeatureStore]:
    reference = make_store(tmp_path / "ref", 0, ["A", "B", "C"] * 4)
    features = make_store(tmp_path / "f", 1, ["D"] * 6)
    return features, adapt_store(features, reference, tmp_path / "out")


def feed(adapter: SpeakerAdapter, frames: np.ndarray) -> np.ndarray:
    adapter.begin()
    rows = np.stack([adapter.step(row) for row in frames])
    adapter.end()
    return rows


def test_step_by_step_equals_the_store(tmp_path: Path, adapted) -> None:
    features, out = adapted
    spec = AdaptationSpec.from_store(out)
    path = tmp_path / "state" / "speaker.json"
    assert not path.exists()
    adapter = SpeakerAdapter(spec, path)
    for i in range(3):
        rows = feed(adapter, features.clip(i).frames)
        np.testing.assert_allclose(rows, out.clip(i).frames, atol=1e-5)
        assert adapter.report()["speaker_state"]["earlier_utterances"] == i
        assert json.loads(path.read_text())["utterances"] == i + 1
    # a new process picks the speaker up where the file left it
    resumed = SpeakerAdapter(spec, path)
    assert resumed.earlier_utterances == 3
    for i in range(3, 6):
        np.testing.assert_allclose(
            feed(resumed, features.clip(i).frames), out.clip(i).frames, atol=1e-5
        )
    assert not list(path.parent.glob(".*tmp*")), "temporary files left behind"


def test_unfinished_utterance_is_not_counted(tmp_path: Path, adapted) -> None:
    features, out = adapted
    adapter = SpeakerAdapter(AdaptationSpec.from_store(out), tmp_path / "s.json")
    adapter.begin()
    adapter.step(features.clip(0).frames[0])
    adapter.begin()  # the recognizer's reset: the utterance was abandoned
    np.testing.assert_allclose(
        feed(adapter, features.clip(0).frames), out.clip(0).frames, atol=1e-5
    )
    assert json.loads((tmp_path / "s.json").read_text())["utterances"] == 1


def bad_files(spec: AdaptationSpec) -> dict[str, object]:
    good = SpeakerState(spec, 1, np.ones(spec.dim), np.full(spec.dim, 2.0)).to_json()
    return {
        "not JSON": "{oops",
        "format": {"hello": 1},
        "transform": {**good, "transform": "0" * 24},
        "dim": {**good, "dim": spec.dim + 1},
        "version": {**good, "version": 99},
        "utterances": {**good, "utterances": -1},
        "sum_mean": {**good, "sum_mean": [1.0] * (spec.dim - 1)},
        "sum_square": {**good, "sum_square": ["x"] * spec.dim},
        "non-finite": {**good, "sum_mean": [float("nan")] * spec.dim},
        "negative": {**good, "sum_square": [-1.0] * spec.dim},
    }


BAD_CASES = [
    "not JSON",
    "format",
    "transform",
    "dim",
    "version",
    "utterances",
    "sum_mean",
    "sum_square",
    "non-finite",
    "negative",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_state_files_refused_in_one_line(tmp_path: Path, adapted, case: str) -> None:
    _, out = adapted
    assert sorted(bad_files(AdaptationSpec.from_store(out))) == sorted(BAD_CASES)
    spec = AdaptationSpec.from_store(out)
    content = bad_files(spec)[case]
    path = tmp_path / "bad.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(SpeakerStateError) as error:
        SpeakerAdapter(spec, path)
    message = str(error.value)
    assert message.startswith(str(path)) and "\n" not in message


def test_state_of_another_reference_refused(tmp_path: Path, adapted) -> None:
    features, out = adapted
    path = tmp_path / "s.json"
    feed(SpeakerAdapter(AdaptationSpec.from_store(out), path), features.clip(0).frames)
    other = adapt_store(features, features, tmp_path / "other", prior=Prior(2.0, 2.0))
    with pytest.raises(SpeakerStateError, match="transform"):
        SpeakerAdapter(AdaptationSpec.from_store(other), path)


def test_hand_computed_state_after_two_utterances(tmp_path: Path) -> None:
    """1-D steps; population m0 = 3, v0 = 9; prior kappa = 2, nu = 1 (in utterances)."""
    spec = AdaptationSpec(
        Population(np.array([3.0]), np.array([9.0])), Prior(2.0, 1.0), "sum", ("R1", "R2")
    )
    adapter = SpeakerAdapter(spec, tmp_path / "speaker.json")
    # utterance 1 (no earlier one): the population's (x - 3) / sqrt(9): 1 -> -2/3, 3 -> 0
    first = feed(adapter, np.array([[1.0], [3.0]], np.float32))
    np.testing.assert_allclose(first[:, 0], [-2 / 3, 0.0], atol=1e-6)
    # utterance 1 gave mean (1 + 3)/2 = 2 and mean square (1 + 9)/2 = 5. Before utterance 2:
    # mu = (2*3 + 2) / (2 + 1) = 8/3; q1(mu) = 5 - 2 (8/3) 2 + 64/9 = 13/9;
    # var = (1*9 + 13/9) / (1 + 1) = 47/9, so 4 -> (4 - 8/3) / sqrt(47/9) = 4 / sqrt(47)
    second = feed(adapter, np.array([[4.0]], np.float32))
    assert second[0, 0] == pytest.approx(4 / np.sqrt(47), abs=1e-6)
    # utterance 2 gave mean 4 and mean square 16: n = 2, sums 6 and 21.
    # mu = (2*3 + 6) / (2 + 2) = 3; q1(3) = 5 - 12 + 9 = 2, q2(3) = 16 - 24 + 9 = 1;
    # var = (1*9 + 2 + 1) / (1 + 2) = 4: a new step x becomes (x - 3) / 2
    saved = json.loads((tmp_path / "speaker.json").read_text())
    assert (saved["utterances"], saved["sum_mean"], saved["sum_square"]) == (2, [6.0], [21.0])
    mu, var = SpeakerState(spec, 2, [6.0], [21.0]).normaliser()
    assert (mu[0], var[0]) == (pytest.approx(3.0), pytest.approx(4.0))
    third = feed(SpeakerAdapter(spec, tmp_path / "speaker.json"), np.array([[7.0], [1.0]]))
    np.testing.assert_allclose(third[:, 0], [2.0, -1.0], atol=1e-6)

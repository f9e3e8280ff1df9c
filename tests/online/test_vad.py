"""Voice activity: the energy detector's levels, the tracker's hysteresis (hand-computed
frame by frame), chunking invariance, and Silero's model loading with no network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avemotion.online.vad import (
    FRAME_SAMPLES,
    EnergyDetector,
    TurnConfig,
    TurnTracker,
    detect_turns,
    make_detector,
)


class Scripted:
    """A frame detector that returns the next score of a list (the frame's content unused)."""

    name = "scripted"

    def __init__(self, scores: list[float]) -> None:
        self.scores, self.calls = list(scores), 0

    def reset(self) -> None:
        self.calls = 0

    def score(self, frame: np.ndarray) -> float:
        self.calls += 1
        return self.scores[self.calls - 1]


def frames(n: int) -> np.ndarray:
    return np.zeros(n * FRAME_SAMPLES, np.float32)


def test_energy_detector_levels_by_hand() -> None:
    detector = EnergyDetector(margin_db=12.0, min_db=-55.0, rise_db_per_s=1.5)
    loud, quiet = np.full(FRAME_SAMPLES, 0.1), np.full(FRAME_SAMPLES, 0.001)
    assert detector.score(loud) == 0.0  # -20 dBFS sets the floor: not 12 dB above it
    assert detector.score(quiet) == 0.0  # -60 dBFS: the floor drops to it; below -55
    assert detector.floor_db == pytest.approx(-60.0, abs=1e-5)  # 1e-12 keeps log finite
    assert detector.score(loud) == 1.0  # -20 >= -60 + 12 and >= -55
    assert detector.floor_db == pytest.approx(-60.0 + 1.5 * 0.032, abs=1e-5)  # rises slowly


def test_tracker_turn_boundaries_by_hand() -> None:
    # 3 silent frames, 10 speech frames, 12 silent: onset 2 frames, hangover 9 frames.
    tracker = TurnTracker(Scripted([0] * 3 + [1] * 10 + [0] * 12), TurnConfig())
    events = tracker.push(frames(25))
    assert [(e.kind, e.start_s, e.end_s) for e in events] == [
        ("start", pytest.approx(3 * 0.032), None),
        ("end", pytest.approx(3 * 0.032), pytest.approx(13 * 0.032)),
    ]
    assert not events[1].dropped and tracker.dropped == 0
    # known after frame 4 (the onset's second frame) and frame 21 (the 9th silent frame)
    assert events[0].heard_s == pytest.approx(5 * 0.032)
    assert events[1].heard_s == pytest.approx(22 * 0.032)


def test_short_bursts_are_dropped_and_counted() -> None:
    # 5 speech frames (0.16 s < 0.25 s) then silence; and one lone frame (no onset).
    tracker = TurnTracker(Scripted([1] * 5 + [0] * 10 + [1] + [0] * 10), TurnConfig())
    events = tracker.push(frames(26))
    assert [e.kind for e in events] == ["start", "end"] and events[1].dropped
    assert tracker.dropped == 1


def test_long_turn_is_cut_at_max_turn() -> None:
    config = TurnConfig(max_turn_s=0.32)  # 10 frames
    tracker = TurnTracker(Scripted([1] * 30), config)
    ends = [e for e in tracker.push(frames(30)) if e.kind == "end"]
    # frames 0-9, 10-19, 20-29: each cut at 10 frames, the next starting at its first frame
    assert [(e.start_s, e.end_s) for e in ends] == [
        (0.0, pytest.approx(0.32)),
        (pytest.approx(0.32), pytest.approx(0.64)),
        (pytest.approx(0.64), pytest.approx(0.96)),
    ]


def test_skip_closes_the_turn_and_moves_the_clock() -> None:
    tracker = TurnTracker(Scripted([1] * 20 + [0] * 20), TurnConfig())
    tracker.push(frames(12))
    events = tracker.skip_to(1.0)
    assert [e.kind for e in events] == ["end"] and events[0].end_s == pytest.approx(12 * 0.032)
    assert tracker.frame == round(1.0 / 0.032) and not tracker.in_turn


def test_turns_do_not_depend_on_chunking() -> None:
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(16000 * 6).astype(np.float32) * 0.001
    audio[16000:40000] += np.sin(np.arange(24000) * 0.07).astype(np.float32) * 0.2
    audio[60000:80000] += np.sin(np.arange(20000) * 0.05).astype(np.float32) * 0.2
    a = detect_turns(audio, EnergyDetector(), chunk=1600)
    b = detect_turns(audio, EnergyDetector(), chunk=333)
    assert a == b and len(a) == 2
    assert a[0][0] == pytest.approx(1.0, abs=0.05) and a[1][1] == pytest.approx(5.0, abs=0.05)


def test_unknown_detector_is_refused() -> None:
    with pytest.raises(ValueError, match="--vad: expected one of energy, silero"):
        make_detector("webrtc")


def test_silero_loads_offline_and_finds_real_speech(ravdess_root: Path) -> None:
    from avemotion.encoders.media import load_audio

    clip = sorted((ravdess_root / "Actor_15").glob("*.flac"))[0]
    audio = load_audio(clip)
    padded = np.concatenate([np.zeros(16000, np.float32), audio, np.zeros(16000, np.float32)])
    turns = detect_turns(padded, make_detector("silero"))
    assert len(turns) == 1
    start, end = turns[0]
    assert 1.0 < start < end < 1.0 + len(audio) / 16000


def test_silero_absent_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "silero_vad" else real(name, *a),
    )
    with pytest.raises(ValueError, match=r"pip install -e '.\[vad\]' \(or use --vad energy\)"):
        make_detector("silero")
    assert make_detector("energy").name == "energy"  # the other path needs no package

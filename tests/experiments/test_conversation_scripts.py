"""experiments/make_conversation.py and vad_comparison.py: same seed, same recording; tiny
smoke runs on a fake RAVDESS folder of synthetic utterances."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from test_scripts import load_script

from avemotion.benchmarks.conversation import synthetic_utterance


@pytest.fixture
def fake_ravdess(tmp_path: Path) -> Path:
    """Actor_15 with 4 clips (emotions 01, 03, 04, 05) of synthetic voiced audio."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "ravdess" / "Actor_15"
    folder.mkdir(parents=True)
    for emotion in ("01", "03", "04", "05"):
        name = f"03-01-{emotion}-01-01-01-15.flac"
        soundfile.write(folder / name, synthetic_utterance(rng, 1.5), 16000)
    return folder.parent


def test_same_seed_same_conversation(fake_ravdess: Path, tmp_path: Path, capsys) -> None:
    script = load_script("make_conversation")
    for out in ("a", "b"):
        argv = ["--root", str(fake_ravdess), "--actors", "15", "--out", str(tmp_path / out)]
        assert script.main([*argv, "--seed", "3"]) == 0
    a, b = tmp_path / "a" / "Actor_15", tmp_path / "b" / "Actor_15"
    assert a.with_suffix(".flac").read_bytes() == b.with_suffix(".flac").read_bytes()
    assert a.with_suffix(".csv").read_text() == b.with_suffix(".csv").read_text()
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result["recordings"]["Actor_15"]["turns"] == 4
    rows = a.with_suffix(".csv").read_text().splitlines()
    assert rows[0] == "start,end,label,clip_id,speaker"
    starts = [float(r.split(",")[0]) for r in rows[1:]]
    ends = [float(r.split(",")[1]) for r in rows[1:]]
    pauses = np.array(starts[1:]) - np.array(ends[:-1])
    assert np.all((pauses >= 0.4 - 1e-3) & (pauses <= 2.0 + 1e-3))
    assert {r.split(",")[2] for r in rows[1:]} == {"neutral", "happy", "sad", "angry"}
    script.main(["--root", str(fake_ravdess), "--actors", "15", "--out", str(tmp_path / "c")])
    assert (tmp_path / "c" / "Actor_15.flac").read_bytes() != a.with_suffix(".flac").read_bytes()


def test_missing_actor_is_refused(fake_ravdess: Path, tmp_path: Path) -> None:
    script = load_script("make_conversation")
    with pytest.raises(ValueError, match="--actors: no clips of Actor_16"):
        script.main(["--root", str(fake_ravdess), "--actors", "16", "--out", str(tmp_path)])


def test_vad_comparison_smoke(fake_ravdess: Path, tmp_path: Path, capsys) -> None:
    load_script("make_conversation").main(
        ["--root", str(fake_ravdess), "--actors", "15", "--out", str(tmp_path / "conv")]
    )
    capsys.readouterr()
    assert load_script("vad_comparison").main(["--recordings", str(tmp_path / "conv")]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    energy = result["detectors"]["energy 0.3"]
    assert energy["Actor_15"]["labelled"] == 4 and energy["synthetic"]["labelled"] == 60
    assert energy["synthetic"]["recall"] == 1.0  # tones are what the energy detector sees
    assert energy["recordings"]["labelled"] == 4  # pooled over the recordings (one here)
    assert set(result["detectors"]) == {"energy 0.3", "silero 0.3"}

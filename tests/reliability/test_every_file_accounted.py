"""Every file under ``--root`` ends up in a clip or is listed with its reason, for
``extract``, ``train-encoder`` and ``stream``: the 16-file ``Actor_19`` folder of issue 14,
rebuilt from generated audio."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import soundfile

from avemotion.encoders.bundle import load_encoder
from avemotion.store import FeatureStore

from .conftest import tone, write_video, write_wav

GOOD = [f"03-01-0{e}-01-01-01-19.wav" for e in range(1, 7)]
"""Six clips of actor 19, emotions 01-06."""
RESAMPLED = {"03-01-07-01-01-01-19.wav": 8000, "03-01-08-01-01-01-19.wav": 44100}
"""Usable after decoding: an 8 kHz clip (resampled) and a 44.1 kHz stereo one (mixed down)."""
SKIPPED = {
    "03-01-01-01-02-01-19.flac": "the audio track holds no samples",  # zero bytes
    "03-01-02-01-02-01-19.flac": "the audio track holds no samples",  # text renamed .flac
    "03-01-03-01-02-01-19.flac": "corrupt audio track",  # a FLAC cut in half
    "03-01-04-01-02-01-19.wav": "silent audio",
    "03-01-05-01-02-01-19.wav": "shorter than one step window",  # 0.2 s
    "03-01-06-01-02-01-19.flac": "the audio track holds no samples",  # random bytes
    "03-01-06-01-02-02-19-é.flac": "does not follow the RAVDESS naming",
    "03-01-07-01-02-01-19.flac": "dangling symbolic link",
}
"""File → the reason its line must give."""


def actor_19(root: Path) -> Path:
    """The folder: 6 good clips, 2 odd but usable ones, 8 that cannot be clips."""
    folder = root / "Actor_19"
    folder.mkdir(parents=True)
    for i, name in enumerate(GOOD):
        soundfile.write(folder / name, tone(1.5, 16000, freq=180 + 30 * i), 16000)
    soundfile.write(folder / "03-01-07-01-01-01-19.wav", tone(1.5, 8000), 8000)
    soundfile.write(folder / "03-01-08-01-01-01-19.wav", tone(1.5, 44100, channels=2), 44100)
    names = iter(SKIPPED)
    (folder / next(names)).write_bytes(b"")
    (folder / next(names)).write_text("these are notes, not audio\n")
    soundfile.write(folder / "whole.flac", tone(2.0, 16000), 16000)
    data = (folder / "whole.flac").read_bytes()
    (folder / next(names)).write_bytes(data[: len(data) // 2])
    (folder / "whole.flac").unlink()
    soundfile.write(folder / next(names), np.zeros(24000, np.float32), 16000)
    soundfile.write(folder / next(names), tone(0.2, 16000), 16000)
    (folder / next(names)).write_bytes(np.random.default_rng(0).bytes(5000))
    soundfile.write(folder / next(names), tone(1.5, 16000, freq=400), 16000)
    os.symlink(folder / "deleted.flac", folder / next(names))
    assert len(list(folder.iterdir())) == 16
    return root


def check_lines(lines: list[str], root: Path, expected: dict[str, str]) -> None:
    """One line per expected file, naming it, with its reason; nothing else."""
    assert len(lines) == len(expected), lines
    for name, reason in expected.items():
        (line,) = [line for line in lines if str(root / "Actor_19" / name) in line]
        assert reason in line and "\n" not in line, line


def test_extract_keeps_8_and_names_every_other_file(
    audio_encoder: Path, tmp_path: Path, run_cli
) -> None:
    root = actor_19(tmp_path / "corpus")
    out = tmp_path / "store"
    result = run_cli(
        "extract", "--dataset", "ravdess", "--root", root, "--encoder", audio_encoder,
        "--out", out, "--workers", "1", "--no-progress",
    )  # fmt: skip
    assert result.code == 0, result.err
    store = FeatureStore.open(out)
    kept = sorted(Path(name).stem for name in [*GOOD, *RESAMPLED])
    assert sorted(c.split("/")[1] for c in store.clip_ids) == kept
    assert store.meta["files"] == {"seen": 16, "kept": 8, "skipped": 8}
    check_lines(store.meta["skipped"], root, SKIPPED)
    assert f"{root}: 16 file(s) seen = 8 kept + 8 skipped" in result.out
    for line in store.meta["skipped"]:
        assert f"  skipped {line}" in result.out


def test_extract_lists_files_of_unselected_speakers(
    audio_encoder: Path, tmp_path: Path, run_cli
) -> None:
    root = actor_19(tmp_path / "corpus")
    (root / "Actor_20").mkdir()
    for name in ("03-01-01-01-01-01-20.wav", "03-01-02-01-01-01-20.wav"):
        soundfile.write(root / "Actor_20" / name, tone(1.5, 16000), 16000)
    (root / "Actor_20" / "notes.txt").write_text("session notes\n")
    (root / ".DS_Store").write_bytes(b"\0\0")
    out = tmp_path / "store"
    result = run_cli(
        "extract", "--dataset", "ravdess", "--root", root, "--encoder", audio_encoder,
        "--out", out, "--workers", "1", "--no-progress", "--speakers", "Actor_20",
    )  # fmt: skip
    assert result.code == 0, result.err
    store = FeatureStore.open(out)
    assert store.n_clips == 2 and store.meta["files"] == {"seen": 20, "kept": 2, "skipped": 18}
    lines = store.meta["skipped"]
    not_selected = [line for line in lines if "speaker Actor_19 not selected" in line]
    assert len(not_selected) == 14  # every actor 19 file the naming accepts (none decoded)
    (notes,) = [line for line in lines if "notes.txt" in line]
    assert "unsupported extension .txt" in notes
    (hidden,) = [line for line in lines if ".DS_Store" in line]
    assert "hidden file" in hidden
    # the print folds the unselected speaker's files into one count
    assert "14 file(s) of speakers not selected" in result.out
    assert "notes.txt" in result.out and "speaker Actor_19 not selected" not in result.out


def test_train_encoder_accounts_for_every_file(tmp_path: Path, run_cli) -> None:
    root = actor_19(tmp_path / "corpus")
    out = tmp_path / "enc"
    result = run_cli(
        "train-encoder", "--dataset", "ravdess", "--root", root, "--modality", "audio",
        "--out", out, "--epochs", "1", "--batch-size", "8", "--window-fraction", "0.2",
        "--threads", "1",
    )  # fmt: skip
    assert result.code == 0, result.err
    (entry,) = load_encoder(out).config["history"]
    assert entry["files"] == {"seen": 16, "kept": 8, "skipped": 8}
    assert entry["n_train_clips"] == 8
    check_lines(entry["skipped"], root, SKIPPED)
    assert f"{root}: 16 file(s) seen = 8 kept + 8 skipped" in result.out
    json.dumps(entry, allow_nan=False)


def test_stream_names_what_each_input_supplies(tmp_path: Path) -> None:
    from avemotion.online.sources import describe_inputs

    audio = write_wav(tmp_path / "a.wav", tone(1.5, 16000), 16000)
    video = write_video(tmp_path / "v.mp4", audio_rate=16000)
    mute = write_video(tmp_path / "mute.mp4")
    assert describe_inputs(None, audio, False, True) == [f"{audio}: audio used"]
    assert describe_inputs(video, None, True, True) == [f"{video}: video and audio used"]
    assert describe_inputs(video, audio, True, True) == [
        f"{video}: video used; its audio track is not (--audio supplies the audio)",
        f"{audio}: audio used",
    ]
    assert describe_inputs(mute, audio, True, True) == [
        f"{mute}: video used",
        f"{audio}: audio used",
    ]
    assert describe_inputs(video, None, True, False) == [
        f"{video}: video used; its audio track is not (the run's encoder has no audio part)"
    ]
    assert describe_inputs(video, None, False, True) == [
        f"{video}: audio used; its video track is not (the run's encoder has no visual part)"
    ]
    assert describe_inputs(video, audio, False, True) == [
        f"{video}: not used; its video track is not (the run's encoder has no visual part); "
        f"its audio track is not (--audio supplies the audio)",
        f"{audio}: audio used",
    ]

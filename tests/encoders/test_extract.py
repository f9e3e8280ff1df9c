"""Extraction from real media into a feature store: end to end, bad files, resume after kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from avemotion import FeatureStore
from avemotion.cli import main as cli_main
from avemotion.encoders import extract as extract_module
from avemotion.encoders.bundle import load_encoder
from avemotion.encoders.extract import ExtractConfig, ExtractionError, extract, work_dir


def test_ravdess_subset_end_to_end(
    ravdess_root: Path, tiny_audio_encoder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "store"
    code = cli_main(
        [
            "extract",
            "--dataset",
            "ravdess",
            "--root",
            str(ravdess_root),
            "--encoder",
            str(tiny_audio_encoder),
            "--out",
            str(out),
            "--speakers",
            "Actor_01",
            "Actor_02",
            "--workers",
            "2",
            "--no-progress",
        ]
    )
    assert code == 0
    assert "wrote" in capsys.readouterr().out
    store = FeatureStore.open(out)
    assert store.n_clips == 120 and store.dim == 128
    assert store.speaker_set == ["Actor_01", "Actor_02"] and store.n_classes == 8
    meta = store.meta
    assert (
        meta["corpus"] == "ravdess"
        and meta["modality"] == "audio"
        and meta["steps_per_second"] == 10.0
    )
    assert meta["encoder"].startswith("avemotion-encoder") and meta["encoder_train_speakers"] == [
        "Actor_01"
    ]
    assert meta["face_detected_fraction"] is None
    # every other actor's clip is listed as not selected, and nothing else is skipped
    others = len(list(ravdess_root.rglob("*.*"))) - 120
    assert meta["files"] == {"seen": 120 + others, "kept": 120, "skipped": others}
    assert all("not selected (--speakers" in line for line in meta["skipped"])
    assert not work_dir(out).exists()
    # clip lengths follow the time base: one step per 0.1 s of full 0.975 s windows
    first = sorted(ravdess_root.glob("Actor_01/*"))[0]
    seconds = soundfile.info(str(first)).frames
    assert (
        store.clip(store.clip_ids.index(f"Actor_01/{first.stem}")).frames.shape[0]
        == (seconds - 15600) // 1600 + 1
    )
    # rows equal the streaming per-window encoding of the same clip
    encoder = load_encoder(tiny_audio_encoder)
    audio = soundfile.read(str(first), dtype="float32")[0]
    streamed = encoder.audio_embedding(audio[1600 * 3 : 1600 * 3 + 15600])
    np.testing.assert_allclose(
        store.clip(store.clip_ids.index(f"Actor_01/{first.stem}")).frames[3],
        streamed,
        rtol=1e-4,
        atol=1e-5,
    )


def test_temporal_level(ravdess_root: Path, tiny_audio_encoder: Path, tmp_path: Path) -> None:
    from avemotion.encoders.train import TrainConfig, train_encoder

    enc = tmp_path / "temporal"
    entry = train_encoder(
        TrainConfig(
            dataset="ravdess",
            root=str(ravdess_root),
            modality="temporal",
            init=[str(tiny_audio_encoder)],
            out=str(enc),
            speaker=["Actor_02"],
            train_speakers=["Actor_01"],
            num_epochs=2,
            batch_size=16,
            temporal_hidden=16,
            temporal_copies=1,
            threads=1,
        )
    )
    assert set(entry["metrics"]["after_fraction"]) == {"0.25", "0.5", "0.75", "1.0"}
    stages = [h["stage"] for h in json.loads((enc / "config.json").read_text())["history"]]
    assert stages == ["audio", "temporal"]
    store, skipped = extract(
        ExtractConfig(
            "ravdess",
            str(ravdess_root),
            str(enc),
            str(tmp_path / "store"),
            level="temporal",
            speakers=["Actor_02"],
            workers=1,
            progress=False,
        )
    )
    assert store.dim == 16 + 8 and store.meta["parts"] == {
        "hidden": [0, 16],
        "posteriors": [16, 24],
    }
    np.testing.assert_allclose(np.asarray(store.frames[:, 16:]).sum(1), 1.0, rtol=1e-5)


def _bad_files(folder: Path, mead_root: Path) -> dict[str, str]:
    """Every bad-file case and the message it must get."""
    folder.mkdir()
    (folder / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(100)))
    (folder / "text.mp4").write_text("not a video\n")
    soundfile.write(folder / "short.flac", np.full(4000, 0.1, dtype=np.float32), 16000)
    soundfile.write(folder / "silent.wav", np.zeros(40000, dtype=np.float32), 16000)
    no_audio = sorted(mead_root.glob("*.mp4"))[0]
    os.symlink(no_audio, folder / "no_audio.mp4")
    return {
        "corrupt.wav": "cannot open the file",
        "text.mp4": "cannot open the file",
        "short.flac": "shorter than one step window",
        "silent.wav": "silent audio",
        "no_audio.mp4": "no audio track",
    }


def test_bad_files_are_skipped_with_reasons(
    ravdess_root: Path,
    mead_root: Path,
    tiny_audio_encoder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cases = _bad_files(tmp_path / "media", mead_root)
    good = sorted(ravdess_root.glob("Actor_02/*"))[0]
    os.symlink(good, tmp_path / "media" / "good.flac")
    rows = [f"{name},happy,s1" for name in [*cases, "good.flac"]]
    (tmp_path / "media" / "data.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "store"
    assert (
        cli_main(
            [
                "extract",
                "--dataset",
                "csv",
                "--root",
                str(tmp_path / "media"),
                "--encoder",
                str(tiny_audio_encoder),
                "--out",
                str(out),
                "--workers",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    store = FeatureStore.open(out)
    assert store.clip_ids == ["good"]
    cases["data.csv"] = "label sheet"  # read for the labels, in no clip
    skipped = store.meta["skipped"]
    assert len(skipped) == len(cases)
    for (name, message), reason in zip(sorted(cases.items()), skipped):  # sorted by path
        assert name in reason and message in reason and "\n" not in reason
        assert reason in printed
    # nothing usable at all: the command fails with the first reason
    (tmp_path / "media" / "data.csv").write_text("\n".join(rows[:-1]) + "\n")
    with pytest.raises(ExtractionError, match="7 file.s. seen = 0 kept . 7 skipped: nothing"):
        extract(
            ExtractConfig(
                "csv",
                str(tmp_path / "media"),
                str(tiny_audio_encoder),
                str(tmp_path / "none"),
                workers=1,
                progress=False,
            )
        )
    assert (
        cli_main(
            [
                "extract",
                "--dataset",
                "csv",
                "--root",
                str(tmp_path / "media"),
                "--encoder",
                str(tiny_audio_encoder),
                "--out",
                str(tmp_path / "none"),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "nothing could be extracted" in capsys.readouterr().err


def test_resume_after_kill_matches_an_uninterrupted_run(
    ravdess_root: Path, tiny_audio_encoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    speakers = ["Actor_03", "Actor_04"]
    out = tmp_path / "resumed"
    command = [
        sys.executable,
        "-m",
        "avemotion",
        "extract",
        "--dataset",
        "ravdess",
        "--root",
        str(ravdess_root),
        "--encoder",
        str(tiny_audio_encoder),
        "--out",
        str(out),
        "--workers",
        "1",
        "--no-progress",
        "--speakers",
        *speakers,
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    work = work_dir(out)

    def completed() -> set[int]:
        # A clip counts once its .json is written: the .npy comes first.
        return {int(p.stem) for p in work.glob("*.npy") if (work / f"{p.stem}.json").is_file()}

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(completed()) < 10 and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = completed()
    assert 10 <= len(done) < 120, f"the kill came at {len(done)} of 120 clips"
    assert not (out / "meta.json").exists()
    processed: list[int] = []
    original = extract_module._work_clip

    def counting(task):  # type: ignore[no-untyped-def]
        processed.append(task[0])
        return original(task)

    monkeypatch.setattr(extract_module, "_work_clip", counting)
    resumed, _ = extract(
        ExtractConfig(
            "ravdess",
            str(ravdess_root),
            str(tiny_audio_encoder),
            str(out),
            speakers=speakers,
            workers=1,
            progress=False,
        )
    )
    assert not done & set(processed) and len(processed) == 120 - len(done)
    monkeypatch.setattr(extract_module, "_work_clip", original)
    whole, _ = extract(
        ExtractConfig(
            "ravdess",
            str(ravdess_root),
            str(tiny_audio_encoder),
            str(tmp_path / "whole"),
            speakers=speakers,
            workers=1,
            progress=False,
        )
    )
    assert resumed.clip_ids == whole.clip_ids
    np.testing.assert_array_equal(resumed.lengths, whole.lengths)
    np.testing.assert_array_equal(np.asarray(resumed.frames), np.asarray(whole.frames))


def test_existing_store_needs_overwrite(
    ravdess_root: Path, tiny_audio_encoder: Path, tmp_path: Path
) -> None:
    config = ExtractConfig(
        "ravdess",
        str(ravdess_root),
        str(tiny_audio_encoder),
        str(tmp_path / "s"),
        speakers=["Actor_02"],
        workers=1,
        progress=False,
    )
    extract(config)
    with pytest.raises(FileExistsError, match="already exists"):
        extract(config)
    config.overwrite = True
    assert extract(config)[0].n_clips == 60


def test_an_output_that_is_not_a_store_is_refused_before_any_work(
    ravdess_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--out`` naming a directory of other files: refused in one line before the encoder
    is even read (here it does not exist), with ``--overwrite`` too; the files stay."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    argv = ["extract", "--dataset", "ravdess", "--root", str(ravdess_root), "--no-progress"]
    argv += ["--encoder", str(tmp_path / "no-encoder"), "--out", str(out), "--overwrite"]
    assert cli_main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"avemotion extract: error: {out}: a directory that is not a feature store "
        "(no meta.json); it is never replaced: choose another output"
    )
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and not work_dir(out).exists()


def test_a_stored_step_does_not_depend_on_later_steps(
    ravdess_root: Path, tiny_audio_encoder: Path, tmp_path: Path
) -> None:
    """A clip's first rows equal, bit for bit, those of the same audio cut short: each step
    is embedded alone, as a stream embeds it (a batched convolution rounds by batch size)."""
    from avemotion.encoders.datasets import Item
    from avemotion.encoders.extract import encode_clip
    from avemotion.encoders.frontend import WINDOW_SAMPLES, step_hop
    from avemotion.encoders.steps import StepConfig

    source = sorted((ravdess_root / "Actor_02").glob("*.flac"))[0]
    audio, rate = soundfile.read(source, dtype="float32")
    short = tmp_path / "short.wav"
    soundfile.write(short, audio[: WINDOW_SAMPLES + step_hop(10.0)], rate)
    encoder = load_encoder(tiny_audio_encoder)
    steps = StepConfig(10.0, 112)
    whole, _ = encode_clip(encoder, Item(source, "neutral", "Actor_02", "a"), "embedding", steps)
    cut, _ = encode_clip(encoder, Item(short, "neutral", "Actor_02", "b"), "embedding", steps)
    assert len(cut) == 2 and len(whole) > 2
    np.testing.assert_array_equal(cut, whole[:2])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--workers", "-5", "--frame-pool", "-3"], "--workers: expected an integer >= 1, got -5"),
        (["--workers", "0"], "--workers: expected an integer >= 1, got 0"),
        (["--frame-pool", "-3"], "--frame-pool: expected an integer >= 1, got -3"),
    ],
)
def test_workers_and_frame_pool_below_one_are_refused(
    ravdess_root: Path,
    tiny_audio_encoder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    message: str,
) -> None:
    """Before, ``--workers -5 --frame-pool -3`` ran and wrote ``frame_pool: -3`` to meta.json."""
    out = tmp_path / "store"
    argv = ["extract", "--dataset", "ravdess", "--root", str(ravdess_root)]
    argv += ["--encoder", str(tiny_audio_encoder), "--out", str(out), "--no-progress"]
    assert cli_main([*argv, "--speakers", "Actor_02", *flags]) == 2
    assert capsys.readouterr().err.strip() == f"avemotion extract: error: {message}"
    assert not out.exists() and not work_dir(out).exists()


def test_frame_pool_needs_a_visual_part(
    ravdess_root: Path, tiny_audio_encoder: Path, tmp_path: Path
) -> None:
    """Face frames per step mean nothing to an audio encoder: refused, not recorded."""
    out = tmp_path / "store"
    config = ExtractConfig(
        "ravdess", str(ravdess_root), str(tiny_audio_encoder), str(out), frame_pool=11
    )
    with pytest.raises(ValueError, match=r"^--frame-pool: .*no visual part.*expected 1, got 11$"):
        extract(config)
    assert not out.exists() and not work_dir(out).exists()

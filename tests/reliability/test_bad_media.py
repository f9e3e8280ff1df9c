"""Bad media: every case gets a one-line :class:`MediaError` naming the file, usable odd
formats (8/44.1/48 kHz, stereo, 5.1, variable frame rate, non-ASCII names) decode to the
right number of steps, and a batch extraction skips each bad file with its reason and goes on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile

from avemotion.encoders.datasets import Item
from avemotion.encoders.frontend import WINDOW_SAMPLES
from avemotion.encoders.media import AUDIO_RATE, MediaError, load_audio, load_video
from avemotion.encoders.steps import clip_steps
from avemotion.store import FeatureStore

from .conftest import tone, write_video

STEP = AUDIO_RATE // 10  # samples per step at 10 steps per second


def expected_steps(seconds: float) -> int:
    return (int(seconds * AUDIO_RATE) - WINDOW_SAMPLES) // STEP + 1


def _truncated_mp4(folder: Path) -> Path:
    whole = write_video(folder / "whole.mp4", audio_rate=16000)
    data = whole.read_bytes()
    path = folder / "truncated.mp4"
    path.write_bytes(data[: len(data) // 2])  # the moov atom is at the end: cut away
    whole.unlink()
    return path


def _dangling(folder: Path) -> Path:
    path = folder / "dangling.wav"
    os.symlink(folder / "deleted.wav", path)
    return path


def _directory(folder: Path) -> Path:
    path = folder / "a_folder.wav"
    path.mkdir()
    return path


def _text_as_wav(folder: Path) -> Path:
    path = folder / "notes.wav"
    path.write_text("this is a text file renamed .wav\n")
    return path


def _zero_bytes(folder: Path) -> Path:
    path = folder / "zero.wav"
    path.write_bytes(b"")
    return path


# name -> (writer, needs audio, needs video, the reason the message must give)
BAD: dict[str, tuple[Callable[[Path], Path], bool, bool, str]] = {
    "truncated mp4 (audio)": (_truncated_mp4, True, False, "cannot open the file"),
    "truncated mp4 (video)": (_truncated_mp4, False, True, "cannot open the file"),
    "zero bytes": (_zero_bytes, True, False, "cannot open the file"),
    "text renamed .wav": (_text_as_wav, True, False, "cannot open the file"),
    "video without audio track": (
        lambda d: write_video(d / "mute.mp4"),
        True,
        False,
        "no audio track",
    ),
    "audio where video is needed": (
        lambda d: soundfile.write(d / "speech.wav", tone(1.5, 16000), 16000) or d / "speech.wav",
        False,
        True,
        "no video track",
    ),
    "audio shorter than a window": (
        lambda d: soundfile.write(d / "short.wav", tone(0.5, 16000), 16000) or d / "short.wav",
        True,
        False,
        "shorter than one step window",
    ),
    "video shorter than a window": (
        lambda d: write_video(d / "short.mp4", seconds=0.4),
        False,
        True,
        "shorter than one step window",
    ),
    "all-silent audio": (
        lambda d: (
            soundfile.write(d / "silent.wav", np.zeros(32000, np.float32), 16000)
            or d / "silent.wav"
        ),
        True,
        False,
        "silent audio",
    ),
    "unreadable path: dangling symlink": (_dangling, True, False, "no such file"),
    "unreadable path: a directory": (_directory, True, False, "no such file"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_media_get_a_one_line_error_naming_the_file(case: str, tmp_path: Path) -> None:
    writer, audio, video, reason = BAD[case]
    path = writer(tmp_path)
    with pytest.raises(MediaError, match=reason) as caught:
        clip_steps(Item(path, "happy", "s1", path.stem), need_audio=audio, need_visual=video)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message


def test_unreadable_file_without_permission(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = (
        soundfile.write(tmp_path / "locked.wav", tone(1.5, 16000), 16000) or tmp_path / "locked.wav"
    )
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            # as root chmod 000 does not stop reading: fail the opens as they fail for a user
            def refuse(name: object, *args: object, **kwargs: object) -> None:
                if Path(str(name)) == path:
                    raise av.error.PermissionError(13, "Permission denied", str(path))
                raise AssertionError(f"unexpected open of {name}")

            def refuse_libsndfile(name: object, *args: object, **kwargs: object) -> None:
                raise RuntimeError(f"Error opening {str(name)!r}: System error.")

            monkeypatch.setattr(soundfile, "read", refuse_libsndfile)
            monkeypatch.setattr(av, "open", refuse)
        with pytest.raises(MediaError) as caught:
            load_audio(path)
        assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    finally:
        path.chmod(0o644)


@pytest.mark.parametrize(
    ("rate", "channels"), [(8000, 1), (44100, 1), (48000, 1), (16000, 2), (44100, 2), (48000, 6)]
)
def test_sample_rates_and_channel_layouts_decode(rate: int, channels: int, tmp_path: Path) -> None:
    path = tmp_path / f"tone_{rate}_{channels}ch.wav"
    soundfile.write(path, tone(1.5, rate, channels), rate)
    audio = load_audio(path)
    assert audio.ndim == 1 and audio.dtype == np.float32
    assert abs(len(audio) - int(1.5 * AUDIO_RATE)) <= 1
    # the mix-down keeps the level of a signal that is the same on every channel
    assert np.abs(audio).max() == pytest.approx(0.3, abs=0.02)
    steps = clip_steps(Item(path, "happy", "s1", path.stem), need_audio=True, need_visual=False)
    assert steps.n_steps == expected_steps(1.5)


def test_non_ascii_file_name(tmp_path: Path) -> None:
    path = tmp_path / "émotion_悲しい_Ωmega.wav"
    soundfile.write(path, tone(1.5, 16000), 16000)
    steps = clip_steps(Item(path, "sad", "s1", path.stem), need_audio=True, need_visual=False)
    assert steps.n_steps == expected_steps(1.5)
    with pytest.raises(MediaError) as caught:
        clip_steps(Item(path, "sad", "s1", path.stem), need_audio=False, need_visual=True)
    assert str(path) in str(caught.value)


def test_variable_frame_rate_keeps_each_frames_time(tmp_path: Path) -> None:
    gaps = [0.03, 0.05] * 20
    times = list(np.concatenate([[0.0], np.cumsum(gaps)[:-1]]))
    path = write_video(
        tmp_path / "vfr.mkv", size=128, frame_times=times, container="matroska", face=True
    )
    video = load_video(path)
    np.testing.assert_allclose(video.times, times, atol=1e-3)
    steps = clip_steps(Item(path, "happy", "s1", "vfr"), need_audio=False, need_visual=True)
    duration = times[-1] + 1.0 / video.fps
    assert steps.n_steps == expected_steps(duration) and steps.faces_detected == steps.n_steps


def test_no_face_in_any_frame_is_skipped(tmp_path: Path) -> None:
    """Uniform frames hold no face: a visual clip of centre crops would be noise."""
    path = write_video(tmp_path / "no_face.mp4", seconds=1.5)
    with pytest.raises(MediaError, match="no face") as caught:
        clip_steps(Item(path, "happy", "s1", "no_face"), need_audio=False, need_visual=True)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def _batch(folder: Path) -> tuple[list[str], dict[str, str]]:
    """Good files and bad files (name -> reason) for an audio extraction."""
    folder.mkdir()
    good = []
    for name, rate, channels in [
        ("tone8k.wav", 8000, 1),
        ("tone44k_stereo.wav", 44100, 2),
        ("tone48k_5.1.wav", 48000, 6),
        ("ünïcødé_音声.wav", 16000, 1),
    ]:
        soundfile.write(folder / name, tone(1.5, rate, channels), rate)
        good.append(name)
    write_video(folder / "with_audio.mp4", audio_rate=16000)
    good.append("with_audio.mp4")
    bad = {
        _truncated_mp4(folder).name: "cannot open the file",
        _zero_bytes(folder).name: "cannot open the file",
        _text_as_wav(folder).name: "cannot open the file",
        write_video(folder / "mute.mp4").name: "no audio track",
        _dangling(folder).name: "no such file",
        _directory(folder).name: "no such file",
    }
    soundfile.write(folder / "short.wav", tone(0.5, 16000), 16000)
    soundfile.write(folder / "silent.wav", np.zeros(32000, np.float32), 16000)
    bad.update({"short.wav": "shorter than one step window", "silent.wav": "silent audio"})
    return good, bad


def test_extraction_skips_bad_files_with_reasons_and_goes_on(
    audio_encoder: Path, tmp_path: Path, run_cli
) -> None:
    good, bad = _batch(tmp_path / "media")
    names = sorted([*good, *bad])  # bad files first, last and in between
    rows = [f"{name},{['happy', 'sad'][i % 2]},s{i % 3}" for i, name in enumerate(names)]
    (tmp_path / "media" / "data.csv").write_text("path,label,speaker\n" + "\n".join(rows) + "\n")
    out = tmp_path / "store"
    result = run_cli(
        "extract", "--dataset", "csv", "--root", tmp_path / "media", "--encoder", audio_encoder,
        "--out", out, "--workers", "1", "--no-progress",
    )  # fmt: skip
    assert result.code == 0, result.err
    store = FeatureStore.open(out)
    assert sorted(store.clip_ids) == sorted(Path(name).stem for name in good)
    assert all(length == expected_steps(1.5) for length in store.lengths)
    skipped = store.meta["skipped"]
    bad["data.csv"] = "label sheet"  # read for the labels, in no clip: listed too
    assert len(skipped) == len(bad)
    assert store.meta["files"] == {
        "seen": len(good) + len(bad),
        "kept": len(good),
        "skipped": len(bad),
    }
    for reason in skipped:
        name = next(n for n in bad if str(tmp_path / "media" / n) in reason)
        assert bad[name] in reason and "\n" not in reason
        assert reason in result.out


def test_visual_extraction_skips_audio_only_clips_and_goes_on(
    visual_encoder: Path, tmp_path: Path, run_cli
) -> None:
    from avemotion.benchmarks.av_fixture import synthetic_av_clip

    media = tmp_path / "media"
    media.mkdir()
    soundfile.write(media / "speech.wav", tone(1.5, 16000), 16000)
    synthetic_av_clip(media / "face.mkv", seconds=1.5, size=128)
    (media / "data.csv").write_text("speech.wav,sad,b\nface.mkv,happy,a\n")
    out = tmp_path / "store"
    result = run_cli(
        "extract", "--dataset", "csv", "--root", media, "--encoder", visual_encoder,
        "--out", out, "--workers", "1", "--no-progress",
    )  # fmt: skip
    assert result.code == 0, result.err
    store = FeatureStore.open(out)
    assert store.clip_ids == ["face"] and store.meta["face_detected_fraction"] == 1.0
    sheet, reason = store.meta["skipped"]  # sorted by path: data.csv, speech.wav
    assert (
        sheet == f"{media / 'data.csv'}: the corpus's label sheet (read for the labels, not a clip)"
    )
    assert str(media / "speech.wav") in reason and "no video track" in reason
    assert "\n" not in reason and reason in result.out

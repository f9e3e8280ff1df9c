"""An audio-visual test clip: a real MEAD face video muxed with a RAVDESS utterance of the
same emotion, or, when that data is absent, a synthetic clip labelled as such.

MEAD's clips carry no audio track and RAVDESS's speech has no video, so neither alone is
an audio-visual stream. :func:`mux_av_clip` copies the video packets unchanged (H.264) and
encodes the 16 kHz speech losslessly (FLAC) into one Matroska file, trimmed to the video's
duration, so decoding it gives the original frames and the original samples.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from avemotion.encoders.media import AUDIO_RATE, load_audio

MEAD_TO_RAVDESS = {
    "neutral": "01",
    "happy": "03",
    "sad": "04",
    "angry": "05",
    "fear": "06",
    "disgusted": "07",
    "surprised": "08",
}
"""MEAD emotion name → RAVDESS emotion code, for the emotions both corpora share."""


@dataclass(frozen=True)
class FixtureClip:
    """A muxed clip and where it came from."""

    path: Path
    """The ``.mkv`` file (H.264 video and/or FLAC audio)."""
    kind: str
    """``"real"`` (MEAD video + RAVDESS speech) or ``"synthetic"`` (generated)."""
    emotion: str
    """The emotion both sources show (``"synthetic"`` for the generated clip)."""
    sources: tuple[str, ...]
    """The files the clip was muxed from (empty for the synthetic clip)."""
    fallback: str | None = None
    """Why the synthetic clip stands in for the real one (``None`` when it does not)."""


def find_pair(
    data_root: str | os.PathLike[str],
    emotion: str = "angry",
    speaker: str = "M030",
    actor: str = "01",
) -> tuple[Path, Path]:
    """A MEAD clip of ``speaker`` and a RAVDESS clip of ``actor`` showing ``emotion``.

    Raises ``FileNotFoundError`` naming what is missing.
    """
    if emotion not in MEAD_TO_RAVDESS:
        raise ValueError(f"emotion: expected one of {sorted(MEAD_TO_RAVDESS)}, got {emotion!r}")
    root = Path(data_root)
    videos = sorted((root / "mead-video").glob(f"{speaker}_front_{emotion}_level*.mp4"))
    if not videos:
        raise FileNotFoundError(f"{root / 'mead-video'}: no {speaker} clip of emotion {emotion!r}")
    code = MEAD_TO_RAVDESS[emotion]
    strong = "02" if code != "01" else "01"
    audios = sorted(
        (root / "ravdess-speech-16k" / f"Actor_{actor}").glob(
            f"03-01-{code}-{strong}-01-01-{actor}.*"
        )
    )
    if not audios:
        raise FileNotFoundError(
            f"{root / 'ravdess-speech-16k'}: no actor {actor} clip of emotion {emotion!r}"
        )
    return videos[0], audios[0]


def _add_flac_stream(output: object) -> object:
    stream = output.add_stream("flac", rate=AUDIO_RATE)  # type: ignore[attr-defined]
    stream.layout = "mono"
    return stream


def _write_flac_stream(output: object, stream: object, audio: np.ndarray) -> None:
    import av

    pcm = np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)
    block = 4096
    for start in range(0, len(pcm), block):
        frame = av.AudioFrame.from_ndarray(
            pcm[None, start : start + block], format="s16", layout="mono"
        )
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        frame.time_base = Fraction(1, AUDIO_RATE)
        for packet in stream.encode(frame):  # type: ignore[attr-defined]
            output.mux(packet)  # type: ignore[attr-defined]
    for packet in stream.encode(None):  # type: ignore[attr-defined]
        output.mux(packet)  # type: ignore[attr-defined]


def mux_av_clip(
    video: str | os.PathLike[str], audio: str | os.PathLike[str], out: str | os.PathLike[str]
) -> Path:
    """Mux ``video``'s video track (packets copied) with ``audio`` (as FLAC) into ``out``.

    The audio is trimmed to the video's duration. The file is written atomically.
    """
    import av

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    samples = load_audio(audio)
    tmp = out.with_name(f".{out.stem}.tmp-{os.getpid()}{out.suffix}")
    with av.open(str(video)) as source:
        in_stream = source.streams.video[0]
        duration = float(source.duration or 0) / 1e6 or float(
            in_stream.duration * in_stream.time_base
        )
        samples = samples[: int(duration * AUDIO_RATE)]
        with av.open(str(tmp), "w", format="matroska") as output:
            out_video = output.add_stream_from_template(in_stream)
            out_audio = _add_flac_stream(output)
            for packet in source.demux(in_stream):
                if packet.dts is None:
                    continue
                packet.stream = out_video
                output.mux(packet)
            _write_flac_stream(output, out_audio, samples)
    os.replace(tmp, out)
    return out


def synthetic_av_clip(
    out: str | os.PathLike[str], seconds: float = 4.0, fps: int = 25, size: int = 256, seed: int = 0
) -> Path:
    """Write a generated audio-visual clip: a drawn face (skin-toned ellipse, eyes, a mouth
    that opens with the voice) drifting over a noisy background, and a voiced harmonic
    sound with a syllable-rate envelope. H.264 video, FLAC audio, Matroska container."""
    import av
    import cv2

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_samples = int(seconds * AUDIO_RATE)
    t = np.arange(n_samples) / AUDIO_RATE
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t) ** 2
    pitch = 140.0 + 20.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / AUDIO_RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    audio = (0.2 * envelope * voice + 0.01 * rng.standard_normal(n_samples)).astype(np.float32)
    tmp = out.with_name(f".{out.stem}.tmp-{os.getpid()}{out.suffix}")
    with av.open(str(tmp), "w", format="matroska") as output:
        stream = output.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "bf": "0"}
        audio_stream = _add_flac_stream(output)
        background = rng.integers(40, 90, size=(size, size, 3), dtype=np.uint8)
        for index in range(int(seconds * fps)):
            time = index / fps
            image = background.copy()
            cx = int(size / 2 + size * 0.06 * np.sin(2 * np.pi * 0.3 * time))
            cy = int(size / 2 + size * 0.04 * np.cos(2 * np.pi * 0.2 * time))
            cv2.ellipse(image, (cx, cy), (size // 5, size // 4), 0, 0, 360, (205, 160, 130), -1)
            for dx in (-size // 12, size // 12):
                cv2.circle(image, (cx + dx, cy - size // 14), size // 40, (40, 30, 30), -1)
            opening = 2 + int(size / 30 * envelope[min(n_samples - 1, int(time * AUDIO_RATE))])
            cv2.ellipse(
                image, (cx, cy + size // 8), (size // 14, opening), 0, 0, 360, (120, 40, 50), -1
            )
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
        _write_flac_stream(output, audio_stream, audio)
    os.replace(tmp, out)
    return out


def fixture_clip(
    out_dir: str | os.PathLike[str],
    data_root: str | os.PathLike[str] | None = None,
    emotion: str = "angry",
) -> FixtureClip:
    """The real muxed clip when ``data_root`` holds MEAD and RAVDESS, else the synthetic one
    with the reason in ``fallback`` (so a result never passes synthetic figures off as real)."""
    out_dir = Path(out_dir)
    if data_root is None:
        reason = "no data root given"
    else:
        try:
            video, audio = find_pair(data_root, emotion)
        except FileNotFoundError as error:
            reason = str(error)
        else:
            path = mux_av_clip(video, audio, out_dir / f"mead-ravdess-{emotion}.mkv")
            return FixtureClip(path, "real", emotion, (str(video), str(audio)))
    path = synthetic_av_clip(out_dir / "synthetic-av.mkv")
    return FixtureClip(path, "synthetic", "synthetic", (), reason)

"""The synthetic default corpus: a deterministic stand-in for real audio-visual embeddings.

It lets ``gym.make("AVEmotion-v0")`` and ``avemotion train`` run on a fresh machine with no
data. It is generated on first use into a cache directory (``$AVEMOTION_CACHE`` or
``~/.cache/avemotion``) and is never shipped as a file. Its structure mimics what the real
pipeline produces:

- K = 6 emotions, 8 speakers, clips of 20–80 steps at 10 steps/s;
- a 128-d "visual" part and a 128-d "audio" part (fused dim 256);
- each clip starts neutral; class evidence ramps up after a random onset;
- every speaker adds its own offset, partly aligned with the class directions, and expresses
  each emotion in a personal style (the class direction plus a speaker-specific deviation),
  so that an unseen speaker is harder than an unseen clip of a known speaker;
- per-step noise is large, so averaging more steps (waiting longer) is more accurate.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from avemotion.store import STEPS_PER_SECOND, FeatureStore, StoreError

SYNTHETIC_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise")
SYNTHETIC_VERSION = 1
N_SPEAKERS = 8
CLIPS_PER_SPEAKER_CLASS = 10
VISUAL_DIM = 128
AUDIO_DIM = 128
STYLE_SD = 0.35


def cache_dir() -> Path:
    """Directory for generated artefacts: ``$AVEMOTION_CACHE`` or ``~/.cache/avemotion``."""
    return Path(os.environ.get("AVEMOTION_CACHE", Path.home() / ".cache" / "avemotion"))


def generate_synthetic_clips(seed: int = 0) -> dict:
    """Generate the synthetic corpus in memory (deterministic for a given ``seed``)."""
    rng = np.random.default_rng(seed)
    k, dim = len(SYNTHETIC_CLASSES), VISUAL_DIM + AUDIO_DIM
    prototypes = rng.normal(0.0, 1.0, size=(k, dim)).astype(np.float32)
    prototypes /= np.linalg.norm(prototypes, axis=1, keepdims=True) / np.sqrt(dim) * 2.0
    # The audio part carries weaker evidence than the visual part, as in the paper.
    prototypes[:, VISUAL_DIM:] *= 0.6
    speaker_offsets, speaker_styles = [], []
    for _ in range(N_SPEAKERS):
        mix = rng.normal(0.0, 0.1, size=k)
        offset = mix @ prototypes + rng.normal(0.0, 0.6, size=dim)
        speaker_offsets.append(offset.astype(np.float32))
        # How this speaker expresses each emotion: the shared prototype plus a personal deviation.
        speaker_styles.append(
            (prototypes + rng.normal(0.0, STYLE_SD, size=(k, dim))).astype(np.float32)
        )
    sequences, labels, speakers, clip_ids = [], [], [], []
    for s in range(N_SPEAKERS):
        for c in range(k):
            for r in range(CLIPS_PER_SPEAKER_CLASS):
                length = int(rng.integers(20, 81))
                onset = int(rng.integers(2, max(3, length // 3)))
                ramp = float(rng.uniform(5.0, 20.0))
                intensity = float(rng.uniform(0.3, 0.6))
                t = np.arange(length, dtype=np.float32)
                evidence = np.clip((t - onset) / ramp, 0.0, 1.0) * intensity
                noise = rng.normal(0.0, 1.0, size=(length, dim)).astype(np.float32)
                frames = speaker_offsets[s] + evidence[:, None] * speaker_styles[s][c] + noise
                sequences.append(frames.astype(np.float32))
                labels.append(c)
                speakers.append(f"S{s + 1:02d}")
                clip_ids.append(f"synthetic_S{s + 1:02d}_{SYNTHETIC_CLASSES[c]}_{r:02d}")
    return {"sequences": sequences, "labels": labels, "speakers": speakers, "clip_ids": clip_ids}


def synthetic_store(path: str | os.PathLike[str] | None = None, seed: int = 0) -> FeatureStore:
    """Open the synthetic corpus, generating it into the cache on first use.

    Concurrent first uses are safe: each writes its own temporary directory and the
    atomic rename lets exactly one win; the others open the winner's store.
    """
    path = (
        Path(path)
        if path is not None
        else cache_dir() / f"synthetic-v{SYNTHETIC_VERSION}-seed{seed}"
    )
    if (path / "meta.json").is_file():
        return FeatureStore.open(path, verify=False)
    clips = generate_synthetic_clips(seed)
    meta = {
        "corpus": "synthetic",
        "modality": "audio-visual (synthetic)",
        "steps_per_second": STEPS_PER_SECOND,
        "encoder": f"synthetic-v{SYNTHETIC_VERSION}",
        "parts": {"visual": [0, VISUAL_DIM], "audio": [VISUAL_DIM, VISUAL_DIM + AUDIO_DIM]},
        "seed": seed,
    }
    try:
        return FeatureStore.create(path, class_names=SYNTHETIC_CLASSES, meta=meta, **clips)
    except (FileExistsError, OSError, StoreError):
        if (path / "meta.json").is_file():
            return FeatureStore.open(path, verify=False)
        raise

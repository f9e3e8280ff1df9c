"""Resampling a stream to 16 kHz block by block, with the samples extraction gets.

Extraction resamples a whole signal at once (:func:`avemotion.encoders.media.resample`,
torchaudio's windowed-sinc filter). :class:`BlockResampler` runs that same torchaudio
transform on each stretch of the stream with enough neighbouring samples on both sides, so
its output equals the whole-signal result (within float rounding) while holding only a few
dozen samples of context: memory stays flat however long the stream.
"""

from __future__ import annotations

import math

import numpy as np

from avemotion.encoders.media import AUDIO_RATE


class BlockResampler:
    """``push`` samples at ``rate`` Hz as they arrive and get 16 kHz samples back; ``flush``
    at the end of the signal returns the rest (the output then has the whole-signal length).

    torchaudio's filter maps each period of ``rate / g`` input samples (``g`` the greatest
    common divisor of the rates) to ``16000 / g`` output samples, from the period and
    ``width`` samples either side: a period is resampled once its right side has arrived,
    with at least ``width`` samples before it kept from the last call.
    """

    def __init__(self, rate: int, target: int = AUDIO_RATE) -> None:
        self.rate, self.target = int(rate), int(target)
        if self.rate <= 0 or self.target <= 0:
            raise ValueError(
                f"sample rate: expected a positive number of Hz, got {rate} → {target}"
            )
        common = math.gcd(self.rate, self.target)
        self.period, self.out_per_period = self.rate // common, self.target // common
        self._transform = None
        self.width = 0
        if self.rate != self.target:
            import torchaudio.transforms

            self._transform = torchaudio.transforms.Resample(self.rate, self.target)
            self.width = int(self._transform.width)
        self._context = math.ceil(self.width / self.period) * self.period
        self._buffer = np.zeros(0, dtype=np.float32)
        self._start = 0  # input index of _buffer[0], a multiple of the period
        self._done = 0  # periods resampled so far
        self._received = 0

    def push(self, samples: np.ndarray) -> np.ndarray:
        """The 16 kHz samples that ``samples`` (mono, at ``rate``) complete."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self._transform is None:
            return samples
        self._buffer = np.concatenate([self._buffer, samples])
        self._received += len(samples)
        ready = (self._received - self.width) // self.period
        if ready <= self._done:
            return np.zeros(0, dtype=np.float32)
        end = ready * self.period + self.width - self._start
        out = self._resample(self._buffer[:end])[: (ready - self._done) * self.out_per_period]
        self._done = ready
        cut = max(0, ready * self.period - self._context) - self._start
        self._buffer, self._start = self._buffer[cut:], self._start + cut
        return out

    def flush(self) -> np.ndarray:
        """The rest of the output at the end of the signal (zeros after it, as extraction)."""
        if self._transform is None or not len(self._buffer):
            return np.zeros(0, dtype=np.float32)
        out = self._resample(self._buffer)
        self._buffer = np.zeros(0, dtype=np.float32)
        return out

    def _resample(self, stretch: np.ndarray) -> np.ndarray:
        """The output of ``stretch`` (starting at ``_start``) from the first period not
        yet resampled on."""
        import torch

        assert self._transform is not None
        out = self._transform(torch.from_numpy(np.ascontiguousarray(stretch))).numpy()
        skip = (self._done - self._start // self.period) * self.out_per_period
        return out[skip:]

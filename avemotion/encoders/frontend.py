"""The VGGish log-mel front end and the step time base.

Recipe (VGGish): 16 kHz audio, 25 ms Hann window, 10 ms hop, magnitude spectrum, 64 HTK mel
bands over 125–7500 Hz, ``log(mel + 0.01)``, patches of 96 frames × 64 bands. The
spectrogram and the filterbank come from ``torchaudio.transforms``.

Time base: step ``i`` (``steps_per_second`` steps per second) owns the audio window
``[i·hop, i·hop + WINDOW_SAMPLES)`` with ``hop = 16000 / steps_per_second`` samples, i.e.
the 0.975 s that yield exactly one 96-frame patch, centred on ``step_times(...)[i]``. A clip
has ``n_steps`` full windows; a clip shorter than one window has none.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from avemotion.encoders.media import AUDIO_RATE
from avemotion.store import STEPS_PER_SECOND

WINDOW_MS = 25.0
HOP_MS = 10.0
N_MELS = 64
F_MIN, F_MAX = 125.0, 7500.0
LOG_OFFSET = 0.01
PATCH_FRAMES = 96
WIN_SAMPLES = int(AUDIO_RATE * WINDOW_MS / 1000)  # 400
HOP_SAMPLES = int(AUDIO_RATE * HOP_MS / 1000)  # 160
N_FFT = 512
WINDOW_SAMPLES = (PATCH_FRAMES - 1) * HOP_SAMPLES + WIN_SAMPLES  # 15600 samples, 0.975 s
"""Samples of one step's audio window: exactly one 96 × 64 patch."""


@lru_cache(maxsize=1)
def _mel_transform() -> torch.nn.Module:
    import torchaudio.transforms as T

    return T.MelSpectrogram(
        sample_rate=AUDIO_RATE,
        n_fft=N_FFT,
        win_length=WIN_SAMPLES,
        hop_length=HOP_SAMPLES,
        f_min=F_MIN,
        f_max=F_MAX,
        n_mels=N_MELS,
        power=1.0,
        center=False,
        mel_scale="htk",
        norm=None,
    ).eval()


def log_mel(audio: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Log-mel spectrogram ``[frames, 64]`` of a 16 kHz mono signal (no padding)."""
    signal = torch.as_tensor(np.asarray(audio, dtype=np.float32))
    if signal.numel() < WIN_SAMPLES:
        return torch.zeros(0, N_MELS)
    # torch.stft centres the 400-sample window inside each 512-sample FFT frame; padding
    # by the difference makes frame k cover samples [160 k, 160 k + 400), as VGGish frames.
    edge = (N_FFT - WIN_SAMPLES) // 2
    signal = torch.nn.functional.pad(signal, (edge, edge))
    with torch.no_grad():
        mel = _mel_transform()(signal)  # [64, frames]
    return torch.log(mel + LOG_OFFSET).T.contiguous()


def step_hop(steps_per_second: float) -> int:
    """Samples between the starts of two consecutive step windows."""
    if not steps_per_second > 0:
        raise ValueError(f"steps_per_second: expected > 0, got {steps_per_second}")
    return int(round(AUDIO_RATE / float(steps_per_second)))


def n_steps(n_samples: int, steps_per_second: float = STEPS_PER_SECOND) -> int:
    """Number of full step windows in a signal of ``n_samples`` samples at 16 kHz."""
    if n_samples < WINDOW_SAMPLES:
        return 0
    return (n_samples - WINDOW_SAMPLES) // step_hop(steps_per_second) + 1


def step_times(count: int, steps_per_second: float = STEPS_PER_SECOND) -> np.ndarray:
    """Centre time in seconds of each of ``count`` steps."""
    hop = step_hop(steps_per_second)
    return (np.arange(count) * hop + WINDOW_SAMPLES / 2) / AUDIO_RATE


def window_patch(window: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The ``[96, 64]`` log-mel patch of one step window of :data:`WINDOW_SAMPLES` samples."""
    window = torch.as_tensor(np.asarray(window, dtype=np.float32))
    if window.numel() != WINDOW_SAMPLES:
        raise ValueError(
            f"window: expected {WINDOW_SAMPLES} samples at 16 kHz, got {window.numel()}"
        )
    return log_mel(window)


class SlidingLogMel:
    """Log-mel patches of consecutive step windows, each 10 ms frame computed once.

    Two consecutive windows at a hop of ``stride`` whole frames (10 at 10 steps/s) share
    ``96 - stride`` frames: frame ``k`` of step ``i + 1`` is frame ``k + stride`` of step
    ``i``, since both cover the same 400 samples. :meth:`patch` keeps the last patch and
    transforms only the window's last ``stride`` frames (about 10 % of the work), with the
    same torchaudio transform as :func:`window_patch`, from the same samples. A window that
    does not follow the last one (a gap, a new stream, or a hop that is not a whole number
    of frames) is transformed whole.
    """

    def __init__(self, steps_per_second: float = STEPS_PER_SECOND) -> None:
        hop = step_hop(steps_per_second)
        self.stride = hop // HOP_SAMPLES if hop % HOP_SAMPLES == 0 else 0
        """Frames between consecutive windows, or 0 when they share no whole frames."""
        self.frames_computed = 0
        """Log-mel frames transformed so far (a whole window is 96)."""
        self.reset()

    def reset(self) -> None:
        """Forget the last patch (a new stream)."""
        self._last: torch.Tensor | None = None
        self._last_index = -2

    def patch(self, index: int, window: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The ``[96, 64]`` patch of step ``index``'s window (equal to :func:`window_patch`)."""
        window = torch.as_tensor(np.asarray(window, dtype=np.float32))
        follows = index == self._last_index + 1 and self._last is not None
        if not follows or not 0 < self.stride < PATCH_FRAMES:
            patch = window_patch(window)
            self.frames_computed += PATCH_FRAMES
        else:
            if window.numel() != WINDOW_SAMPLES:
                raise ValueError(
                    f"window: expected {WINDOW_SAMPLES} samples at 16 kHz, got {window.numel()}"
                )
            first_new = PATCH_FRAMES - self.stride
            new = log_mel(window[first_new * HOP_SAMPLES :])  # exactly ``stride`` frames
            patch = torch.cat([self._last[self.stride :], new])  # type: ignore[index]
            self.frames_computed += self.stride
        self._last, self._last_index = patch, index
        return patch


def step_patches(audio: np.ndarray, steps_per_second: float = STEPS_PER_SECOND) -> torch.Tensor:
    """The ``[T, 96, 64]`` patches of every step of a signal.

    When the step hop is a whole number of 10 ms frames (10 steps/s: 10 frames) the clip's
    spectrogram is computed once and sliced, which equals :func:`window_patch` on each
    window; otherwise each window is transformed on its own.
    """
    count = n_steps(len(audio), steps_per_second)
    if count == 0:
        return torch.zeros(0, PATCH_FRAMES, N_MELS)
    hop = step_hop(steps_per_second)
    if hop % HOP_SAMPLES == 0:
        frames = log_mel(audio)
        stride = hop // HOP_SAMPLES
        return frames.unfold(0, PATCH_FRAMES, stride)[:count].transpose(1, 2).contiguous()
    return torch.stack(
        [window_patch(audio[i * hop : i * hop + WINDOW_SAMPLES]) for i in range(count)]
    )


def patch_statistics(patches: torch.Tensor) -> torch.Tensor:
    """Per-band mean and standard deviation over the frames of ``[T, 96, 64]`` log-mel
    patches: ``[T, 128]`` speaker-robust summaries the LSTM may read beside the embedding."""
    return torch.cat([patches.mean(dim=1), patches.std(dim=1)], dim=-1)


def window_energy_db(patches: torch.Tensor) -> np.ndarray:
    """Mean log-mel level of each patch, a cheap loudness measure for voiced-window selection."""
    if len(patches) == 0:
        return np.zeros(0, dtype=np.float32)
    return patches.mean(dim=(1, 2)).numpy()


def voiced_mask(patches: torch.Tensor, drop: float = 2.5) -> np.ndarray:
    """Steps whose mean log-mel level is within ``drop`` (natural-log units, about
    ``drop × 8.7`` dB) of the loudest step of the clip: the windows that carry speech."""
    level = window_energy_db(patches)
    if level.size == 0:
        return np.zeros(0, dtype=bool)
    return level >= level.max() - drop

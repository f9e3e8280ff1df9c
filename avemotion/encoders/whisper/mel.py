"""Whisper's log-mel spectrogram, computed exactly as OpenAI's ``whisper/audio.py`` does.

16 kHz mono, a 400-sample periodic Hann window every 160 samples (10 ms), the power
spectrum without its last frame, 80 Slaney-scale, Slaney-normalised mel bands, ``log10``
clamped at 1e-10, then floored at the maximum minus 8 and mapped by ``(x + 4) / 4``.
No padding to 30 s: ``N`` samples give ``N // 160`` frames.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torchaudio.functional import melscale_fbanks

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
N_MELS = 80


@functools.lru_cache(maxsize=8)
def _window_and_filters(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The Hann window and the ``[N_MELS, N_FFT // 2 + 1]`` filterbank (librosa's default
    mel filters, which Whisper ships), built once per device."""
    window = torch.hann_window(N_FFT, device=device)
    filters = melscale_fbanks(
        N_FFT // 2 + 1, 0.0, SAMPLE_RATE / 2, N_MELS, SAMPLE_RATE, norm="slaney", mel_scale="slaney"
    )
    return window, filters.T.contiguous().to(device)


def log_mel(
    audio: np.ndarray | torch.Tensor, device: torch.device | str | None = None
) -> torch.Tensor:
    """The ``[80, N // 160]`` Whisper log-mel of ``N`` samples of 16 kHz mono audio, on
    ``device`` (default: the tensor's own, or the CPU for an array)."""
    wave = torch.as_tensor(audio)
    if not wave.is_floating_point():
        raise ValueError(
            f"log_mel: expected float samples in [-1, 1], got {wave.dtype} (scale PCM first)"
        )
    if wave.ndim != 1:
        raise ValueError(
            f"log_mel: expected mono audio of shape [samples], got {tuple(wave.shape)}"
        )
    if wave.numel() <= N_FFT // 2:  # the centred STFT reflects N_FFT // 2 samples at each end
        raise ValueError(f"log_mel: {wave.numel()} samples; Whisper's STFT needs over {N_FFT // 2}")
    wave = wave.to(device=device if device is not None else wave.device, dtype=torch.float32)
    window, filters = _window_and_filters(wave.device)
    spectrum = torch.stft(wave, N_FFT, HOP_LENGTH, window=window, return_complex=True)
    power = spectrum[..., :-1].abs() ** 2
    mel = (filters @ power).clamp_(min=1e-10).log10_()
    mel = torch.maximum(mel, mel.max() - 8.0)
    return mel.add_(4.0).div_(4.0)

"""Whisper's log-mel: hand-computed values (silence, a constant signal), the reference
fixture (faster-whisper's numpy recipe) and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avemotion.encoders.whisper import HOP_LENGTH, N_MELS, SAMPLE_RATE, log_mel

from .make_fixture import FIXTURE, signal


def test_silence_is_the_floor_everywhere() -> None:
    # power 0 -> clamped at 1e-10 -> log10 = -10 everywhere, the maximum too -> (-10 + 4) / 4
    mel = log_mel(np.zeros(1600, dtype=np.float32))
    assert mel.shape == (N_MELS, 1600 // HOP_LENGTH)
    assert torch.equal(mel, torch.full_like(mel, -1.5))


def slaney_weight(band: int, hz: float) -> float:
    """Band ``band``'s Slaney-normalised triangle at ``hz``, for bands below 1 kHz where the
    Slaney mel scale is linear (200/3 Hz per mel): written out independently of torchaudio."""
    top = 15.0 + math.log(SAMPLE_RATE / 2 / 1000.0) / (math.log(6.4) / 27.0)  # 8 kHz in mels
    edge = [200.0 / 3.0 * top * i / (N_MELS + 1) for i in (band, band + 1, band + 2)]
    ramp = min((hz - edge[0]) / (edge[1] - edge[0]), (edge[2] - hz) / (edge[2] - edge[1]))
    return max(0.0, ramp) * 2.0 / (edge[2] - edge[0])


def test_a_constant_signal_by_hand() -> None:
    # A periodic 400-point Hann window sums to 200 and its DFT is 200, -100 at bin 1, 0 beyond:
    # a constant c has power (200 c)^2 at 0 Hz and (100 c)^2 at bin 1 (40 Hz). The 0 Hz bin
    # falls on every band's zero; bands 0 and 1 see 40 Hz; all others sit on the floor.
    c = 0.5
    bands = [(100 * c) ** 2 * slaney_weight(b, 40.0) for b in (0, 1)]
    peak = math.log10(bands[0])
    expected = np.full((N_MELS, 10), (peak - 8.0 + 4.0) / 4.0)
    expected[0], expected[1] = (peak + 4.0) / 4.0, (math.log10(bands[1]) + 4.0) / 4.0
    mel = log_mel(np.full(1600, c, dtype=np.float32))
    np.testing.assert_allclose(mel.numpy(), expected, atol=2e-5)
    assert expected[0, 0] == pytest.approx(1.44837, abs=1e-5)  # (log10(62.15) + 4) / 4


def test_matches_the_reference_recipe() -> None:
    fixture = np.load(FIXTURE)
    audio = signal()
    assert float(audio.astype(np.float64).sum()) == pytest.approx(
        float(fixture["audio_sum"]), abs=1e-9
    )
    mel = log_mel(audio)
    assert mel.shape == fixture["mel"].shape == (80, 100)
    np.testing.assert_allclose(mel.numpy(), fixture["mel"], atol=1e-4)
    assert torch.equal(log_mel(torch.from_numpy(audio)), mel)


def test_on_a_device() -> None:
    mel = log_mel(signal(0.5), device="cpu")
    assert mel.device.type == "cpu" and mel.shape == (80, 50)


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        (np.zeros((2, 1600), dtype=np.float32), "mono"),
        (np.zeros(200, dtype=np.float32), "200 samples"),
        (np.zeros(1600, dtype=np.int16), "expected float samples"),
    ],
)
def test_bad_audio_is_one_line(audio: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        log_mel(audio)
    assert "\n" not in str(error.value)

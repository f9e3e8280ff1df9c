"""The VGGish log-mel front end and the step time base."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avemotion.encoders import frontend as fe


def test_window_is_one_patch() -> None:
    assert fe.WINDOW_SAMPLES == 15600
    patch = fe.window_patch(np.zeros(fe.WINDOW_SAMPLES, dtype=np.float32))
    assert patch.shape == (fe.PATCH_FRAMES, fe.N_MELS)
    # log(0 + 0.01) everywhere for digital silence
    assert torch.allclose(patch, torch.full_like(patch, np.log(fe.LOG_OFFSET)))


def test_sliced_patches_equal_per_window_patches() -> None:
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.1, size=16000 * 2 + 123).astype(np.float32)
    patches = fe.step_patches(audio, 10.0)
    count = fe.n_steps(len(audio), 10.0)
    assert patches.shape == (count, 96, 64)
    hop = fe.step_hop(10.0)
    for i in (0, 3, count - 1):
        expected = fe.window_patch(audio[i * hop : i * hop + fe.WINDOW_SAMPLES])
        torch.testing.assert_close(patches[i], expected, rtol=1e-4, atol=1e-4)


def test_other_time_bases_transform_each_window() -> None:
    audio = np.random.default_rng(1).normal(0, 0.1, size=16000 * 2).astype(np.float32)
    patches = fe.step_patches(audio, 7.0)  # hop of 2286 samples is not a whole frame count
    assert patches.shape == (fe.n_steps(len(audio), 7.0), 96, 64)


def test_step_count_and_centres() -> None:
    assert fe.n_steps(fe.WINDOW_SAMPLES - 1) == 0
    assert fe.n_steps(fe.WINDOW_SAMPLES) == 1
    assert fe.n_steps(fe.WINDOW_SAMPLES + 1600) == 2
    times = fe.step_times(3)
    np.testing.assert_allclose(times, [0.4875, 0.5875, 0.6875])
    with pytest.raises(ValueError, match="steps_per_second"):
        fe.step_hop(0.0)


def test_tone_lands_in_its_mel_band() -> None:
    t = np.arange(fe.WINDOW_SAMPLES) / 16000
    low = fe.window_patch(0.5 * np.sin(2 * np.pi * 300 * t)).mean(0).argmax()
    high = fe.window_patch(0.5 * np.sin(2 * np.pi * 3000 * t)).mean(0).argmax()
    assert low < high


def test_voiced_mask_drops_silence() -> None:
    rng = np.random.default_rng(2)
    audio = np.concatenate([np.zeros(32000), rng.normal(0, 0.2, 32000), np.zeros(32000)]).astype(
        np.float32
    )
    patches = fe.step_patches(audio)
    voiced = fe.voiced_mask(patches)
    times = fe.step_times(len(patches))
    assert voiced[(times > 2.6) & (times < 3.4)].all()
    assert not voiced[times < 1.4].any()
    assert not voiced[times > 4.6].any()

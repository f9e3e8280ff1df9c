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


def _windows(audio: np.ndarray, hop: int) -> list[np.ndarray]:
    count = (len(audio) - fe.WINDOW_SAMPLES) // hop + 1
    return [audio[i * hop : i * hop + fe.WINDOW_SAMPLES] for i in range(count)]


def test_sliding_patches_equal_windowed_patches_with_a_tenth_of_the_frames() -> None:
    rng = np.random.default_rng(3)
    audio = rng.normal(0, 0.1, size=16000 * 2).astype(np.float32)
    sliding = fe.SlidingLogMel(10.0)
    windows = _windows(audio, fe.step_hop(10.0))
    for i, window in enumerate(windows):
        got = sliding.patch(i, window)
        assert got.shape == (96, 64)
        torch.testing.assert_close(got, fe.window_patch(window), rtol=0, atol=1e-5)
    # hand count: the first window is transformed whole (96 frames), each next one adds
    # the 10 frames its 0.1 s hop brings
    assert sliding.stride == 10
    assert sliding.frames_computed == 96 + 10 * (len(windows) - 1)


def test_sliding_patch_of_new_silence_is_the_log_offset_exactly() -> None:
    # sound, then digital silence: the newest 10 frames of step 9's window [14400, 30000)
    # start at 14400 + 86 * 160 = 28160, past the sound's end at 16000, so they cover only
    # zero samples and each is log(0 + 0.01) exactly
    rng = np.random.default_rng(4)
    audio = np.concatenate([rng.normal(0, 0.2, 16000), np.zeros(16000)]).astype(np.float32)
    hop = fe.step_hop(10.0)
    sliding = fe.SlidingLogMel(10.0)
    windows = _windows(audio, hop)
    patches = [sliding.patch(i, w) for i, w in enumerate(windows)]
    last = patches[9]
    assert torch.equal(last[-10:], torch.full((10, 64), float(np.log(0.01))))
    assert last[0].max() > np.log(0.01) + 1.0  # its first frame still holds the sound


def test_sliding_patches_restart_after_a_gap_and_off_grid_hops() -> None:
    rng = np.random.default_rng(5)
    audio = rng.normal(0, 0.1, size=16000 * 2).astype(np.float32)
    windows = _windows(audio, fe.step_hop(10.0))
    sliding = fe.SlidingLogMel(10.0)
    sliding.patch(0, windows[0])
    got = sliding.patch(3, windows[3])  # steps 1 and 2 skipped: transformed whole
    torch.testing.assert_close(got, fe.window_patch(windows[3]), rtol=0, atol=1e-5)
    assert sliding.frames_computed == 2 * 96
    sliding.reset()
    sliding.patch(4, windows[4])
    assert sliding.frames_computed == 3 * 96
    off_grid = fe.SlidingLogMel(7.0)  # a 2286-sample hop shares no whole frames
    assert off_grid.stride == 0
    hop = fe.step_hop(7.0)
    for i, window in enumerate(_windows(audio, hop)[:3]):
        torch.testing.assert_close(off_grid.patch(i, window), fe.window_patch(window))
    assert off_grid.frames_computed == 3 * 96
    with pytest.raises(ValueError, match="window: expected 15600 samples"):
        sliding.patch(5, windows[5][:-1])

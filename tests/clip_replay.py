"""A second implementation of greedy evaluation, for tests to compare against."""

from __future__ import annotations

import numpy as np

from avemotion.envs import AVEmotionEnv


def play_clip_by_clip(agent, store) -> tuple[np.ndarray, np.ndarray]:
    """One single env, one clip at a time, ``agent.act`` step by step (the evaluation itself
    batches clips through ``act_batch`` on the vector env). Returns each clip's prediction
    and steps observed."""
    env = AVEmotionEnv(store=store, obs_mode=agent.obs_mode, max_length=agent.max_length)
    predictions, steps = [], []
    for clip in range(store.n_clips):
        obs, info = env.reset(options={"clip_index": clip})
        agent.reset()
        terminated = False
        while not terminated:
            obs, _, terminated, _, info = env.step(agent.act(obs, info["action_mask"]))
        predictions.append(int(info["prediction"]))
        steps.append(int(info["frame_index"]) + 1)
    return np.array(predictions), np.array(steps)

"""Register ``AVEmotion-v0`` with Gymnasium, idempotently."""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

ENV_ID = "AVEmotion-v0"


def register_envs() -> None:
    """Register ``AVEmotion-v0`` (single and native vector entry points) once per process."""
    if ENV_ID in registry:
        return
    register(
        id=ENV_ID,
        entry_point="avemotion.envs.av_emotion:AVEmotionEnv",
        vector_entry_point="avemotion.envs.vector:AVEmotionVectorEnv",
    )

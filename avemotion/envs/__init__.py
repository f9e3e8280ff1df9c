"""Gymnasium environments over a feature store: ``AVEmotion-v0`` and its native vector env."""

from avemotion.envs.av_emotion import AVEmotionEnv
from avemotion.envs.core import InvalidActionError, RewardSpec
from avemotion.envs.registration import ENV_ID, register_envs
from avemotion.envs.synthetic import SYNTHETIC_CLASSES, synthetic_store
from avemotion.envs.vector import AVEmotionVectorEnv

__all__ = [
    "ENV_ID",
    "SYNTHETIC_CLASSES",
    "AVEmotionEnv",
    "AVEmotionVectorEnv",
    "InvalidActionError",
    "RewardSpec",
    "register_envs",
    "synthetic_store",
]

"""AVEmotion: online audio-visual emotion recognition as a reinforcement-learning problem.

Importing the package registers ``AVEmotion-v0`` with Gymnasium.
"""

from avemotion.envs.registration import register_envs
from avemotion.store import Clip, FeatureStore, StoreError

__version__ = "0.1.0"
__all__ = ["Clip", "FeatureStore", "StoreError", "__version__"]

register_envs()


def __getattr__(name: str):  # lazy: the online recognizer pulls in torch
    if name == "OnlineRecognizer":
        from avemotion.online import OnlineRecognizer

        return OnlineRecognizer
    raise AttributeError(f"module 'avemotion' has no attribute {name!r}")

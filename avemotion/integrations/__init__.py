"""Adapters that make ``AVEmotion-v0`` native in other RL libraries.

Each module imports its library at import time, so import only the one you use:

- :mod:`avemotion.integrations.torchrl`: ``GymEnv`` with the action mask read from ``info``;
- :mod:`avemotion.integrations.tianshou`: Tianshou 2.x envs with the mask in ``obs.mask``;
- :mod:`avemotion.integrations.rllib`: an RLlib env creator with the mask in a Dict
  observation, and PPO with a masking RLModule.

Each trains on the env's default reward (``reward="earliness"``) unless its env arguments
choose another, and reports the reward spec with its results.

None of them is needed for the CleanRL-style script ``experiments/cleanrl_dqn.py``.
"""

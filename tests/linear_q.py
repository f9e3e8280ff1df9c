"""A Q-network whose values are a hand-set linear map of the observation, for tests that
compute targets and losses by hand."""

from __future__ import annotations

import torch

from avemotion.agents.dqn.networks import FrontEnd, MLPQNetwork


def linear_q(weight: list[list[float]]) -> MLPQNetwork:
    """``Q(s) = weight @ s`` (``weight`` is ``[3 actions, obs_dim]``): a pass-through raw
    front end, no hidden layer, a plain head with zero bias."""
    obs_dim = len(weight[0])
    net = MLPQNetwork(FrontEnd(obs_dim, obs_dim, 2, "raw"), 3, [], dueling=False)
    with torch.no_grad():
        net.head.advantage.weight.copy_(torch.tensor(weight))
        net.head.advantage.bias.zero_()
    return net

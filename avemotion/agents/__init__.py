"""The learners: our DQN (:mod:`avemotion.agents.dqn`), the SB3 wrappers and the greedy policy."""

from avemotion.moved import install

install()  # the agents room's old module paths, for one release

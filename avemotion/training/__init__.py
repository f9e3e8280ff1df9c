"""``avemotion train``: the training flow, the posterior choice, the run directory and the agent options."""

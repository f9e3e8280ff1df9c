"""Posterior models: the class probabilities of a clip after each of its steps.

The first of the two stages every stopping rule builds on (the second, *when* to answer,
is :mod:`avemotion.agents`). Every rule in a comparison reads the same posterior model,
fitted on the same training speakers only. Each model's ``stream()`` gives one clip's
posterior step by step (:class:`PosteriorStream`), the same as its offline ``posteriors``:

- :class:`RunningMeanSoftmax` (the default): a softmax regression on the running mean of
  the step embeddings, its logits rescaled by a step-count calibration;
- :mod:`~avemotion.posterior.prefix_shape` / :mod:`~avemotion.posterior.prefix_neighbour`:
  the shape of the prefix (segment means), or 1-NN distances to the training clips' prefixes;
- :class:`PrefixMiniRocket`: aeon's MiniRocket + ridge at classification points (the
  ``aeon`` extra);
- :class:`StoreLogits`: the store's steps already are per-step log-posteriors (the
  temporal LSTM's, ``avemotion extract --level temporal``);
- :mod:`~avemotion.posterior.crossfit`: out-of-fold posteriors of the training speakers
  (each speaker seen through a model fitted on the others), written once for every rule.
"""

from avemotion.posterior.crossfit import CrossFit, cross_fit
from avemotion.posterior.models import (
    POSTERIOR_MODELS,
    Posteriors,
    PosteriorStream,
    RunningMeanSoftmax,
    StoreLogits,
    load_posterior_model,
)
from avemotion.posterior.prefix_neighbour import PrefixNearestNeighbour
from avemotion.posterior.prefix_rocket import PrefixMiniRocket
from avemotion.posterior.prefix_shape import PrefixShapeSoftmax
from avemotion.posterior.softmax import SoftmaxRegression, fit_calibration
from avemotion.speakers import speaker_folds

__all__ = [
    "POSTERIOR_MODELS",
    "CrossFit",
    "PosteriorStream",
    "Posteriors",
    "PrefixNearestNeighbour",
    "PrefixMiniRocket",
    "PrefixShapeSoftmax",
    "RunningMeanSoftmax",
    "SoftmaxRegression",
    "StoreLogits",
    "cross_fit",
    "fit_calibration",
    "load_posterior_model",
    "speaker_folds",
]

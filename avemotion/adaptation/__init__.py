"""Speaker adaptation between the feature store and the env: causal, label-free
normalisation of each clip with its speaker's earlier clips, shrunk toward a reference
population (``avemotion adapt``, ``avemotion stream --speaker-state``)."""

from avemotion.adaptation.estimator import Population, Prior, choose_prior, normaliser
from avemotion.adaptation.state import SpeakerAdapter, SpeakerState, SpeakerStateError
from avemotion.adaptation.transform import AdaptationSpec, adapt_store, earlier_clips, fit_spec

__all__ = [
    "AdaptationSpec",
    "Population",
    "Prior",
    "SpeakerAdapter",
    "SpeakerState",
    "SpeakerStateError",
    "adapt_store",
    "choose_prior",
    "earlier_clips",
    "fit_spec",
    "normaliser",
]

"""The hyper-parameters of our DQN (:mod:`avemotion.agents.dqn.dqn`), one docstring per field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from avemotion.envs.core import OBS_MODES

_COUNT_FIELDS = {
    "num_envs": 1,
    "buffer_size": 1,
    "batch_size": 1,
    "n_step": 1,
    "target_update_interval": 1,
    "learning_starts": 0,
    "gradient_steps": 0,
    "frontend_folds": 0,
    "checkpoint_every": 1,
    "log_every": 1,
    "torch_threads": 1,
}
"""Integer fields of :class:`DQNConfig` and their smallest allowed value."""

_CHOICE_FIELDS: dict[str, tuple[Any, ...]] = {
    "obs_mode": OBS_MODES,
    "recurrent": (None, "gru", "lstm"),
    "frontend": ("raw", "posterior"),
    "q_head": ("stopping", "free"),
}
"""Fields that take one of a few values, and those values."""

_RANGE_FIELDS: dict[str, tuple[float, float, bool]] = {
    "learning_rate": (0.0, float("inf"), False),
    "gamma": (0.0, 1.0, True),
    "tau": (0.0, 1.0, False),
    "start_epsilon": (0.0, 1.0, True),
    "end_epsilon": (0.0, 1.0, True),
    "exploration_fraction": (0.0, 1.0, True),
    "exploration_wait_prob": (0.0, 1.0, True),
    "posterior_jitter": (0.0, float("inf"), True),
    "frontend_l2": (0.0, float("inf"), True),
    "input_noise": (0.0, float("inf"), True),
    "weight_decay": (0.0, float("inf"), True),
    "max_grad_norm": (0.0, float("inf"), False),
}
"""Number fields: ``(low, high, low included)``; ``high`` is always included."""

_RETIRED_FIELDS = {"extra", "frontend_split", "frontend_refit", "relative_wait_cost"}
"""Fields of older runs' configs that are read and ignored."""


@dataclass
class DQNConfig:
    """Hyper-parameters of our DQN (every field is saved in the run's ``config.json``)."""

    obs_mode: str = "frame+mean"
    """Observation of the env: "frame", "mean" or "frame+mean" (use "frame" with ``recurrent``)."""
    reward: str = "earliness"
    """The env's reward preset (:meth:`~avemotion.envs.core.RewardSpec.preset`), the one
    every agent of a comparison trains on. ``"earliness"``: a correct answer after
    observing ``t`` of the clip's ``T`` steps earns ``1 − w · t / T``, a wrong one and a
    wait 0, so the expected return E[correct × (1 − w · earliness)] has its optimum inside
    the clip, as the harmonic mean's does. ``"signed"``: ±1 for an answer and
    ``-wait_cost`` per wait; its nearly flat return along the accuracy/earliness curve
    makes the learnt policy flip between answering at once and waiting to the end."""
    earliness_weight: float | None = None
    """``"earliness"`` reward: the env's ``w`` (None: the env's default, 1)."""
    match_earliness_weight: bool = False
    """Train on the earliness reward with ``w`` matched to the harmonic mean of the
    training episodes as training goes (:class:`~avemotion.agents.dqn.earliness_weight.MatchedEarlinessWeight`)
    instead of the env's fixed ``w``: a different objective, so a run with it is named
    apart in comparisons."""
    wait_cost: float | None = None
    """``"signed"`` reward: the env's cost of one wait (None: the env's default)."""
    num_envs: int = 32
    """Sub-envs of the native vector env stepped together."""
    learning_rate: float = 5e-4
    """Adam step size."""
    buffer_size: int = 50_000
    """Replay capacity in transitions."""
    batch_size: int = 256
    """Transitions per gradient step (episodes per step are ``batch_size // 32`` when recurrent)."""
    gamma: float = 1.0
    """Discount factor."""
    n_step: int = 8
    """Length of the multi-step return."""
    tau: float = 1.0
    """Target update: 1.0 copies the online net (hard); below 1, Polyak averaging."""
    target_update_interval: int = 100
    """Gradient steps between target updates."""
    start_epsilon: float = 1.0
    """ε at the start of training."""
    end_epsilon: float = 0.02
    """ε after the exploration phase."""
    exploration_fraction: float = 0.4
    """Fraction of the step budget over which ε decays linearly."""
    exploration_wait_prob: float = 0.95
    """When exploring, probability of waiting (if allowed); otherwise a uniform class."""
    learning_starts: int = 5_000
    """Environment steps collected before the first gradient step."""
    gradient_steps: int = 1
    """Gradient steps per collection iteration (one iteration = one step of every sub-env)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer sizes (the last one is the recurrent size when ``recurrent``)."""
    dueling: bool = True
    """Dueling head V + A − mean(A)."""
    double: bool = True
    """Double DQN: the online net picks the bootstrap action, the target net values it."""
    recurrent: str | None = None
    """None for the MLP, or "gru"/"lstm" for a recurrent Q-network over the episode so far."""
    frontend: str = "posterior"
    """Input of the Q-network: "raw" (normalised observation) or "posterior" (class logits
    of a frozen linear classifier of the frame and running mean, fitted on the training
    speakers, plus the time feature): see :class:`~avemotion.agents.dqn.networks.FrontEnd`."""
    q_head: str = "stopping"
    """"stopping": class values from the front end's posterior and a learned wait value
    (:class:`~avemotion.agents.dqn.networks.StoppingQNetwork`; needs a running-mean part);
    "free": every Q-value learned (MLP or recurrent)."""
    frontend_crossfit: bool = True
    """The agent learns on out-of-fold posteriors: each training speaker's clips through a
    front end fitted on the other training speakers, so that they look like those of an
    unseen speaker (:mod:`~avemotion.agents.dqn.posterior_input`). The saved model's front end is
    fitted on all training speakers."""
    frontend_folds: int = 4
    """Folds of the cross-fitting (0: one per training speaker; speaker folds when the
    speakers allow it, else stratified clip folds: :func:`~avemotion.folds.make_folds`;
    1: none); each costs one posterior-model fit before training."""
    stop_time_feature: bool | str = "auto"
    """With the "stopping" head: whether the learnt values also read the time feature
    t / T_max. ``"auto"``: when the fixed fraction beat the threshold on the training
    speakers' out-of-fold posteriors (why: docs/agents.md, "Time, only where it helps")."""
    posterior_jitter: float = 1.4
    """With cross-fitting (or a posterior store): each training episode's logits are
    scaled by ``exp(u)``, ``u ~ U(−r, r)`` (1.4: from a quarter to four times as sharp),
    so that the learnt stopping rule holds on speakers whose posteriors are sharper or
    flatter than the cross-fitted ones (:class:`~avemotion.agents.dqn.posterior_input.SharpnessJitter`).
    0 turns it off."""
    frontend_l2: float = 1e-2
    """L2 penalty of the posterior model's classifier (larger = less over-confident): the
    softmax models' (running-mean and prefix-shape, whether chosen by ``--posterior auto``
    or named); 1-NN and MiniRocket have none."""
    tune_wait_bias: bool = True
    """With the "stopping" head: after training, subtract from Q(wait) the constant that
    gives the best harmonic mean on the training speakers' episodes (as the agent saw
    them), as the threshold baseline tunes θ (:mod:`~avemotion.agents.dqn.stop_tuning`)."""
    earliness_budget: float | None = None
    """With ``tune_wait_bias``: tune for the best accuracy at a mean earliness (on the
    training speakers' episodes) within this budget, instead of for the harmonic mean."""
    counterfactual_classes: bool = True
    """Also regress the Q-values of *every* classification action at every stored step on
    the reward it would have earned (correct or wrong, known from the clip's label): a
    classification ends the episode, so its return needs no rollout."""
    input_noise: float = 0.0
    """Std of Gaussian noise added to the embedding parts of sampled observations (in units
    of the store's per-feature std): augmentation that stops the network from memorising
    the few training clips by their frame noise."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 10.0
    """Gradient clipping norm."""
    checkpoint_every: int = 100_000
    """Environment steps between atomic checkpoints (one is always written at the end)."""
    checkpoint_replay: bool = True
    """Keep the replay memory in the checkpoint, so that a resume continues exactly."""
    log_every: int = 5_000
    """Environment steps between training-log rows."""
    torch_threads: int = 1
    """torch intra-op threads (one is fastest for small networks on a few cores)."""

    def __post_init__(self) -> None:
        if not (isinstance(self.stop_time_feature, bool) or self.stop_time_feature == "auto"):
            raise ValueError(
                "dqn config: stop_time_feature: expected true, false or 'auto', "
                f"got {self.stop_time_feature!r}"
            )
        if self.reward not in ("earliness", "signed"):
            raise ValueError(
                f"dqn config: reward: expected 'earliness' or 'signed', got {self.reward!r}"
            )
        if self.earliness_budget is not None and not 0.0 < self.earliness_budget <= 1.0:
            raise ValueError(
                f"dqn config: earliness_budget: expected a number in (0, 1], got {self.earliness_budget!r}"
            )
        if self.earliness_weight is not None and not 0.0 <= self.earliness_weight <= 1.0:
            raise ValueError(
                f"dqn config: earliness_weight: expected a number in [0, 1], got {self.earliness_weight!r}"
            )
        for name, least in _COUNT_FIELDS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(
                    f"dqn config: {name}: expected an integer >= {least}, got {value!r}"
                )
        self._check_values()

    def _check_values(self) -> None:
        """Choices, number ranges, switches and layer sizes, each refused in one line."""
        for name, choices in _CHOICE_FIELDS.items():
            if getattr(self, name) not in choices:
                raise ValueError(
                    f"dqn config: {name}: expected one of {list(choices)}, got {getattr(self, name)!r}"
                )
        for name, (low, high, closed) in _RANGE_FIELDS.items():
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not (low <= value if closed else low < value) or not value <= high:
                bounds = f"{'[' if closed else '('}{low:g}, {high:g}{']' if high < 1e300 else ')'}"
                raise ValueError(
                    f"dqn config: {name}: expected a number in {bounds}, got {value!r}"
                )
        if self.wait_cost is not None and not (
            isinstance(self.wait_cost, (int, float)) and 0.0 <= self.wait_cost
        ):
            raise ValueError(
                f"dqn config: wait_cost: expected a number >= 0, got {self.wait_cost!r}"
            )
        for name, spec in type(self).__dataclass_fields__.items():
            if spec.type == "bool" and not isinstance(getattr(self, name), bool):
                raise ValueError(
                    f"dqn config: {name}: expected true or false, got {getattr(self, name)!r}"
                )
        if self.q_head == "stopping" and not self.recurrent and self.frontend != "posterior":
            raise ValueError(
                "dqn config: frontend: q_head 'stopping' reads the posterior front end; "
                f"got frontend {self.frontend!r} (use q_head 'free' with it)"
            )
        hidden = self.hidden
        if not isinstance(hidden, (tuple, list)) or not all(
            isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden
        ):
            raise ValueError(
                f"dqn config: hidden: expected a list of layer sizes >= 1, e.g. [64, 64], got {hidden!r}"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any], saved: bool = False) -> DQNConfig:
        """The config of ``values``; ``saved`` (an older run's ``config.json``) also
        accepts, and drops, the fields retired since."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known - (_RETIRED_FIELDS if saved else set()))
        if unknown:
            retired = (
                " (retired: it no longer has an effect)" if unknown[0] in _RETIRED_FIELDS else ""
            )
            raise ValueError(
                f"dqn config: unknown field {unknown[0]!r}{retired}; known: {sorted(known)}"
            )
        values = without_retired(values)
        if values.get("reward") == "env":  # runs saved before the env offered presets
            values["reward"] = "signed"
        if isinstance(values.get("hidden"), (list, tuple)):
            values["hidden"] = tuple(_layer_size(h) for h in values["hidden"])
        return cls(**values)


def unread_fields(config: DQNConfig) -> dict[str, str]:
    """The fields ``config`` holds but its network and training never read, each with the
    reason: a value given for one of them would be silently ignored. Older runs' configs
    record such fields (``dqn-recurrent`` runs record ``q_head: "stopping"``), so this is
    checked against what a user asks for, not when a saved config is read."""
    stop_tuning = ("stop_time_feature", "tune_wait_bias", "earliness_budget")
    if config.recurrent:
        why = "the recurrent network learns every Q-value, with no stopping head"
        asked_stopping = ("q_head",) if config.q_head == "stopping" else ()
        return dict.fromkeys((*asked_stopping, *stop_tuning), why)
    unread: dict[str, str] = {}
    if config.q_head == "free":
        unread.update(dict.fromkeys(stop_tuning, "only the 'stopping' q_head reads it"))
    else:
        unread["dueling"] = "the 'stopping' q_head has no dueling head"
    if not config.tune_wait_bias:
        unread.setdefault("earliness_budget", "only the wait-bias tuning reads it")
    if config.frontend == "raw":
        why = "the 'raw' front end learns on the store's own rows, not on posteriors"
        unread.update(dict.fromkeys(("frontend_crossfit", "posterior_jitter"), why))
    return unread


def without_retired(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the fields older runs' configs may hold and that are ignored now."""
    return {k: v for k, v in values.items() if k not in _RETIRED_FIELDS}


def _layer_size(value: Any) -> Any:
    """A layer size read from JSON or the command line (``16``, ``16.0`` or ``"16"``) as an
    int; anything else is left for the config's own check to refuse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value

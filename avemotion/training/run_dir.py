"""The run directory: what a training run wrote and what it was trained on (its files:
docs/agents.md, "The run directory"); evaluation reopens the recorded training store (or
refuses in one line) and the trained agent."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from avemotion.envs.core import resolve_store
from avemotion.store import FeatureStore
from avemotion.store_files import read_meta

CONFIG = "config.json"
SUMMARY = "summary.json"
POSTERIOR = "posterior.npz"
RULES = "rules.json"
RUN_FIELDS = ("agent", "class_names", "store_dim", "obs_dim", "agent_config")
"""Fields every run's ``config.json`` has, whatever its agent or age."""


def store_digest(store: FeatureStore) -> str:
    """A short digest of a whole store (its arrays' checksums), whatever subset is open."""
    checksums = json.dumps(store.meta.get("checksums", {}), sort_keys=True)
    return hashlib.sha256(checksums.encode()).hexdigest()[:16]


def training_record(
    store: FeatureStore | str | os.PathLike[str] | None,
    full: FeatureStore,
    selected: FeatureStore,
    speakers: list[str] | None,
    exclude_speakers: list[str] | None,
) -> dict[str, Any]:
    """The ``training`` entry of a run's config: enough to reopen exactly that data."""
    return {
        "store": None if store is None else str(Path(full.path).resolve()),
        "synthetic": store is None,
        "digest": store_digest(full),
        "speakers": list(speakers) if speakers is not None else None,
        "exclude_speakers": list(exclude_speakers) if exclude_speakers else None,
        "train_speakers": selected.speaker_set,
        "n_clips": selected.n_clips,
    }


def read_run_config(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A run directory's ``config.json``, with a clear error when it is missing or broken."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (not a run directory)")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: unreadable JSON ({error})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(config).__name__}")
    missing = [key for key in RUN_FIELDS if key not in config]
    if missing:
        raise ValueError(
            f"{path}: missing field {missing[0]!r} (not written by `avemotion train`?)"
        )
    return config


def read_summary(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A run's ``summary.json`` (env steps, seconds, env-steps/s)."""
    return json.loads((Path(run_dir) / SUMMARY).read_text())


def training_store(
    run_dir: str | os.PathLike[str], config: dict[str, Any], verify: bool = True
) -> FeatureStore:
    """The exact clips the run was trained on, or one clear error line (``verify``: check
    the store's files against their checksums too, :meth:`FeatureStore.open`)."""
    record = config.get("training")
    where = Path(run_dir) / CONFIG
    if not record:
        raise ValueError(
            f"{where}: training: this run does not record its training data (trained before "
            "runs recorded it); retrain it to compare rules fairly"
        )
    source = None if record.get("synthetic") else record.get("store")
    if source is not None and not (Path(source) / "meta.json").is_file():
        raise FileNotFoundError(f"{where}: training.store: {source} is missing")
    full = resolve_store(None if source is None else FeatureStore.open(source, verify=verify))
    if store_digest(full) != record["digest"]:
        raise ValueError(
            f"{where}: training.digest: {full.path} changed since the run was trained on it"
        )
    return resolve_store(full, record.get("speakers"), record.get("exclude_speakers"))


def check_disjoint(train: FeatureStore, test: FeatureStore, where: str) -> None:
    """Refuse a test selection that shares clip ids with the training clips."""
    shared = sorted(set(train.clip_ids) & set(test.clip_ids))
    if shared:
        more = f" and {len(shared) - 3} more" if len(shared) > 3 else ""
        raise ValueError(
            f"{where}: the test clips share clip ids with the training clips "
            f"({', '.join(shared[:3])}{more}); a comparison on them would be a leak"
        )


def check_same_adaptation(config: dict[str, Any], test: FeatureStore, where: str) -> None:
    """Refuse a test store whose speaker adaptation (``meta["adaptation"]``, from
    ``avemotion adapt``) differs from that of the store the run was trained on: an agent
    trained on adapted rows would read raw ones, or the reverse. Skipped when the training
    store is not at hand (evaluation without ``--baselines`` does not need it)."""
    record = config.get("training") or {}
    path = None if record.get("synthetic") else record.get("store")
    if path is None or not (Path(path) / "meta.json").is_file():
        return
    trained = read_meta(Path(path)).get("adaptation")
    tested = test.meta.get("adaptation")
    identity = [None if a is None else a.get("identity") for a in (trained, tested)]
    if identity[0] != identity[1]:
        name = ["unadapted" if i is None else f"adapted ({i})" for i in identity]
        raise ValueError(
            f"{where}: adaptation: the run was trained on an {name[0]} store, {test.path} is "
            f"{name[1]}; evaluate it on a store adapted as its training store was"
        )


def load_agent(run_dir: str | os.PathLike[str]) -> Any:
    """Load a trained run as a greedy :class:`~avemotion.agents.policy.Agent` (``reset``/``act``).

    The agent's ``max_length`` is the run's training T_max (None for runs that predate
    it), so that :func:`~avemotion.evaluation.evaluate.sweep_agent` builds its env with it.
    """
    config = read_run_config(run_dir)
    if config["agent"].startswith("dqn"):
        from avemotion.agents.policy import load_dqn_agent

        agent: Any = load_dqn_agent(Path(run_dir), config)
    else:
        from avemotion.agents.sb3 import load_sb3_agent

        agent = load_sb3_agent(Path(run_dir), config)
    agent.max_length = int(config["max_length"]) if config.get("max_length") else None
    return agent

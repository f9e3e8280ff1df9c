"""The speed script runs end to end on tiny.en and reports every row it promises."""

from __future__ import annotations

import json

import pytest

from avemotion.encoders.whisper import WhisperEncoder
from avemotion.encoders.whisper.speed import LENGTHS, main, voice


def test_voice_is_seeded() -> None:
    assert voice(0.5).shape == (8000,) and (voice(0.5) == voice(0.5)).all()


def test_speed_rows(whisper_tiny_en: WhisperEncoder, capsys: pytest.CaptureFixture[str]) -> None:
    main(["--source", "whisper-tiny-en", "--repeats", "1"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["source"] == "whisper-tiny-en" and rows[0]["load_cpu_s"] > 0
    timed = [r for r in rows if "cpu_ms" in r]
    assert [(r["precision"], r["seconds"]) for r in timed] == [
        (p, s) for p in ("fp32", "int8") for s in LENGTHS
    ]
    assert all(
        r["cpu_ms"] > 0 and abs(r["rtf_cpu"] - r["cpu_ms"] / 1000 / r["seconds"]) <= 1e-4
        for r in timed
    )
    (deviation,) = [r["mean_abs_diff_over_std"] for r in rows if "mean_abs_diff_over_std" in r]
    assert len(deviation) == 5 and deviation[0] == 0.0 and all(0 < d < 0.2 for d in deviation[1:])

"""A fabricated ``bench pipeline`` result (two sizes, fp32 and fastest stage times), for the
tests of its printing, writing and chart without running the benchmark."""

from __future__ import annotations

from avemotion.online.records import STAGES


def fabricated_pipeline_result() -> dict:
    return {
        "clip": {"kind": "real", "duration_s": 3.0},
        "load_average": [1.0],
        "target_real_time_factor": 0.1,
        "target_paper_real_time_factor": 0.25,
        "encoders": {
            size: {
                "inference": path,
                "real_time_factor": 0.2,
                "steps": 21,
                "stage_ms_per_step": dict.fromkeys(STAGES, 1.0),
                "fp32": {"real_time_factor": 0.4, "stage_ms_per_step": dict.fromkeys(STAGES, 2.0)},
            }
            for size, path in (("cpu", "fast"), ("paper", "int8"))
        },
    }

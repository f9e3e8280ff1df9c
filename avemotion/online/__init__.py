"""Online recognition of a live stream: :class:`OnlineRecognizer` and its helpers.

- :mod:`.alignment`: cuts incoming media into steps exactly as extraction does;
- :mod:`.observation`: the agent's observation, built as the env builds it;
- :mod:`.recognizer`: encoders + temporal model + agent, step by step, with early stop;
- :mod:`.sources` / :mod:`.streaming`: files and capture devices as live streams;
- :mod:`.timeline`: the confidence-over-time figure.
"""

from avemotion.online.alignment import StreamError
from avemotion.online.recognizer import OnlineRecognizer, StageTimes, StepResult, load_recognizer

__all__ = ["OnlineRecognizer", "StageTimes", "StepResult", "StreamError", "load_recognizer"]

"""A conversation, turn by turn: voice activity finds each utterance, the recogniser gives
each one an early answer, and the speaker state carries over from turn to turn.

:class:`TurnStreamer` scores the audio with a :class:`~avemotion.online.vad.TurnTracker`.
When a turn starts it calls :meth:`OnlineRecognizer.new_utterance` (per-utterance state
afresh, the speaker state kept) and feeds it the turn's audio from ``pre_roll_s`` before
the first speech frame (the first step's window then centres near the onset) to
``post_roll_s`` after the last one. Once the agent has answered, feeding pauses until the
next turn (unless the speaker state needs every step); silence between turns is never fed,
so nothing is encoded in it. An audio-visual run is also fed the frames of each turn's time
(:meth:`TurnStreamer.feed_video`). The audio kept between turns is bounded (the pre-roll), so
memory stays flat however long the stream.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from avemotion.encoders.frontend import n_steps
from avemotion.encoders.media import AUDIO_RATE
from avemotion.online.alignment import StreamError
from avemotion.online.chunks import Skipped
from avemotion.online.recognizer import OnlineRecognizer
from avemotion.online.vad import FRAME_SAMPLES, TurnEvent, TurnTracker

PRE_ROLL_S = 0.5
"""Audio fed before a turn's first speech frame: about half a step window (0.4875 s), so
the first step is centred near the speech onset, as a clip's steps start before its speech."""
POST_ROLL_S = 0.3
"""Audio fed after a turn's last speech frame, at most what was heard when the turn's end
became known (the hangover, 9 frames = 0.288 s): the last step windows hold the
utterance's end, and the turn's audio does not depend on how the stream is chunked."""


@dataclass
class Turn:
    """One utterance and the answer it got (times in seconds of stream time)."""

    turn: int
    start_s: float
    end_s: float
    decision_s: float | None
    """When the answer existed: the end of the decision step's audio window."""
    label: str | None
    confidence: float | None
    """The answered class's posterior, as the stopping rule read it."""
    steps_encoded: int
    forced: bool
    """True when the answer came only at the utterance's end (or the training length)."""
    decision_step: int | None
    steps: int
    """Steps the turn's audio holds (encoded or not)."""

    def to_json(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


class TurnStreamer:
    """Feeds the turns of an audio stream to ``recognizer``; collects one :class:`Turn`
    per utterance. ``feed_audio`` returns the turns completed by that call."""

    def __init__(
        self,
        recognizer: OnlineRecognizer,
        tracker: TurnTracker,
        pre_roll_s: float = PRE_ROLL_S,
        post_roll_s: float = POST_ROLL_S,
    ) -> None:
        if not recognizer.need_audio:
            raise ValueError(
                "--turns: turns are found in the audio: the run's encoder has no audio part "
                f"(it is {recognizer.modality})"
            )
        self.recognizer, self.tracker = recognizer, tracker
        self.pre_roll = round(pre_roll_s * AUDIO_RATE)
        self.post_roll = round(post_roll_s * AUDIO_RATE)
        self._keep = self.pre_roll + tracker.onset_frames * FRAME_SAMPLES + FRAME_SAMPLES
        self._recent = np.zeros(0, dtype=np.float32)
        self._recent_start = 0  # stream sample index of _recent[0]
        self._turn_origin: int | None = None  # sample where the current turn's audio starts
        self._fed = 0  # stream sample up to which the current turn was fed
        self._frames: deque[tuple[float, np.ndarray]] = deque()  # (stream time, RGB frame)
        self._fps: float | None = None
        self.turns: list[Turn] = []
        self.skipped: list[Skipped] = []
        self.steps_encoded = 0

    @property
    def now(self) -> int:
        """Stream samples heard so far (skipped stretches included)."""
        return self._recent_start + len(self._recent)

    def feed_audio(self, samples: np.ndarray) -> list[Turn]:
        """Append 16 kHz mono samples; return the turns they complete."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._trim()
        self._recent = np.concatenate([self._recent, samples])
        done = [turn for event in self.tracker.push(samples) if (turn := self._on(event))]
        if self._turn_origin is not None:
            self._feed_to(self.now)
        return done

    def feed_video(
        self, frames: Sequence[np.ndarray], times: Sequence[float], fps: float | None = None
    ) -> None:
        """Append RGB frames with their stream times (audio-visual runs): those of the turn
        in progress are fed at once; between turns only the pre-roll's worth is kept."""
        self._fps = fps or self._fps
        self._frames.extend(zip((float(t) for t in times), frames))
        if self._turn_origin is not None:
            self._feed_frames()
        else:
            oldest = (self.now - self._keep) / AUDIO_RATE
            while self._frames and self._frames[0][0] < oldest:
                self._frames.popleft()

    def _feed_frames(self) -> None:
        """Feed the kept frames of the turn in progress, timed from the turn's audio start
        (the recogniser times video from its first frame: within one frame of the audio)."""
        origin = self._turn_origin / AUDIO_RATE  # type: ignore[operator]
        recognizer = self.recognizer
        paused = recognizer.decided and recognizer.stop_on_decision
        frames, times = [], []
        while self._frames:
            t, frame = self._frames.popleft()
            if t >= origin and not paused:
                frames.append(frame)
                times.append(t - origin)
        if frames:
            recognizer.feed_video(frames, times, self._fps)

    def skip(self, start_s: float, end_s: float, reason: str, track: str = "audio") -> list[Turn]:
        """A stretch ``start_s``–``end_s`` the source could not deliver: record it; for the
        audio, also end the turn in progress and move the clock past it."""
        done = []
        if track == "audio":
            done = [turn for event in self.tracker.skip_to(end_s) if (turn := self._on(event))]
            self._recent = np.zeros(0, dtype=np.float32)
            self._recent_start = self.tracker.frame * FRAME_SAMPLES
        self.skipped.append(Skipped(round(start_s, 3), round(end_s, 3), reason, track))
        return done

    def finish(self) -> list[Turn]:
        """End of stream: answer the turn in progress."""
        return [turn for event in self.tracker.finish() if (turn := self._on(event))]

    def _trim(self) -> None:
        """Keep only the pre-roll's worth of audio not yet fed (memory stays bounded)."""
        keep_from = self.now - self._keep
        if self._turn_origin is not None:
            keep_from = min(keep_from, self._fed)
        cut = max(0, keep_from - self._recent_start)
        if cut:
            self._recent = self._recent[cut:]
            self._recent_start += cut

    def _on(self, event: TurnEvent) -> Turn | None:
        if event.kind == "start":
            self.recognizer.new_utterance()
            origin = max(round(event.start_s * AUDIO_RATE) - self.pre_roll, self._recent_start)
            self._turn_origin = self._fed = origin
            if self.recognizer.need_video:
                self._feed_frames()
            return None
        if self._turn_origin is None:
            return None
        # only audio heard when the end was known: the same however the stream is chunked
        heard = round(event.heard_s * AUDIO_RATE)
        end = min(round(event.end_s * AUDIO_RATE) + self.post_roll, heard)  # type: ignore[operator]
        self._feed_to(end)
        turn = None if event.dropped else self._close(event, end)
        self._turn_origin = None
        return turn

    def _feed_to(self, until: int) -> None:
        """Feed the current turn's audio up to stream sample ``until`` (or just move past
        it once the agent has answered and encoding is paused)."""
        recognizer = self.recognizer
        if until <= self._fed:
            return
        if not (recognizer.decided and recognizer.stop_on_decision):
            lo, hi = self._fed - self._recent_start, until - self._recent_start
            self.steps_encoded -= recognizer.steps_encoded
            recognizer.feed_audio(self._recent[lo:hi])
            self.steps_encoded += recognizer.steps_encoded
        self._fed = until

    def _close(self, event: TurnEvent, end: int) -> Turn | None:
        """Answer the turn (forced if the agent has not) and record it."""
        origin = self._turn_origin
        assert origin is not None
        try:
            with warnings.catch_warnings():
                if self.recognizer.decided:  # frames stop at the answer: steps after it are cut
                    warnings.filterwarnings("ignore", message="video: ends at")
                summary = self.recognizer.finish()
        except StreamError:  # less audio than one step window (at the stream's start)
            self.skipped.append(
                Skipped(event.start_s, event.end_s, "turn shorter than one step window")  # type: ignore[arg-type]
            )
            return None
        label = summary["decision"]
        read = summary.get("agent_posteriors") or summary.get("posteriors") or {}
        turn = Turn(
            turn=len(self.turns),
            start_s=event.start_s,
            end_s=event.end_s,  # type: ignore[arg-type]
            decision_s=origin / AUDIO_RATE + summary["decision_media_end_s"],
            label=label,
            confidence=read.get(label),
            steps_encoded=summary["steps_encoded"],
            forced=summary["forced"],
            decision_step=summary["decision_step"],
            steps=n_steps(end - origin, self.recognizer.aligner.steps_per_second),
        )
        self.turns.append(turn)
        return turn

    def summary(self) -> dict[str, Any]:
        """The run's last JSON object: ``turns`` (their count) and what was left out."""
        return {
            "turns": len(self.turns),
            "stream_s": round(self.now / AUDIO_RATE, 3),
            "steps_encoded": self.steps_encoded,
            "forced": sum(t.forced for t in self.turns),
            "dropped_bursts": self.tracker.dropped,
            "skipped": [asdict(s) for s in self.skipped],
            "vad": self.tracker.detector.name,
            **self.recognizer.speaker.report(),
        }

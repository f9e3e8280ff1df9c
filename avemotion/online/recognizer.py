"""Online recognition: encoders, temporal model and agent, fed a live stream step by step.

:class:`OnlineRecognizer` takes media as it arrives (video frames with their times and/or
16 kHz audio samples), cuts it into steps exactly as extraction does
(:class:`~avemotion.online.alignment.StepAligner`), encodes each step (face crop, visual
CNN, log-mel and audio CNN, fusion, one LSTM step with its state kept across calls), builds
the agent's observation as the env does and asks the agent to wait or answer. Once the
agent answers, encoding stops: later steps are only counted (``total_steps``), never
encoded (``steps_encoded``). A stream that ends undecided is answered on its last step with
waiting masked out, as the env forces it; so is a stream that reaches the longest training
clip's length, beyond which no training episode ever went. A run whose agent reads its
posterior model's log-posteriors (``agent_input == "posteriors"``: the prefix-shape
softmax, the 1-NN, MiniRocket, the LSTM's store logits) streams that model too
(:meth:`~avemotion.posterior.models.PosteriorStream.update`), as evaluation computes it.
``speaker_state``: adaptation.state.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avemotion.adaptation.state import NoAdaptation, speaker_hook
from avemotion.agents.dqn.posterior_input import log_posteriors
from avemotion.encoders.bundle import Encoder, load_encoder
from avemotion.encoders.face import FaceConfig, load_cascade
from avemotion.encoders.fast import Calibration
from avemotion.encoders.frontend import WINDOW_SAMPLES
from avemotion.encoders.media import AUDIO_RATE
from avemotion.envs.core import ObservationLayout
from avemotion.online.alignment import StepAligner, StepMedia, StreamError
from avemotion.online.faces import FaceCropper
from avemotion.online.observation import StreamingObservation, run_layout, training_store
from avemotion.online.records import StageTimes, StepResult
from avemotion.online.step_encoder import StepEncoder


class OnlineRecognizer:
    """A trained run (encoders + temporal model + agent) applied to a live stream.

    ``feed_video``/``feed_audio``/``feed`` return the steps encoded by that call; ``finish``
    ends the stream and returns the summary; ``new_utterance`` starts the next one. Invalid input
    raises :class:`StreamError` and leaves the steps so far intact. ``inference`` picks the
    networks' path (:mod:`avemotion.encoders.fast`): ``fp32`` (torch, the default),
    ``fast`` (ONNX Runtime, the same float arithmetic) or ``int8`` (with ``calibration``).
    """

    def __init__(
        self,
        encoder: Encoder,
        agent: Any,
        layout: ObservationLayout,
        level: str,
        class_names: Sequence[str] | None = None,
        frame_pool: int = 1,
        stop_on_decision: bool = True,
        face: FaceConfig | None = None,
        face_lookahead: bool = True,
        speaker: NoAdaptation | None = None,
        inference: str = "fp32",
        calibration: Calibration | None = None,
        posterior: Any = None,
    ) -> None:
        encoder.check_level(level)
        self.posterior = None if posterior is None else posterior.stream()
        """The run's posterior model streaming one utterance (:class:`PosteriorStream`),
        when the agent reads its log-posteriors (``agent_input == "posteriors"``)."""
        reads = encoder.level_dim(level) if posterior is None else self.posterior.dim
        if encoder.level_dim(level) != reads:
            raise ValueError(
                f"level {level}: the encoder gives {encoder.level_dim(level)} values per step, the posterior model reads {reads}"
            )
        agent_dim = reads if posterior is None else len(class_names or encoder.class_names)
        if agent_dim != layout.dim:
            raise ValueError(
                f"level {level}: the agent expects {layout.dim} values per step, it is given {agent_dim}"
            )
        self.encoder, self.agent, self.level = encoder, agent, level
        self.class_names = list(class_names if class_names is not None else encoder.class_names)
        """The agent's classes (action k answers class k - 1): the store's class names."""
        self.posterior_names = list(encoder.class_names)
        """The temporal model's classes, which label the posteriors (usually the same)."""
        self.speaker = speaker or NoAdaptation()
        self.stop_on_decision = stop_on_decision and not self.speaker.needs_every_step
        self.need_audio, self.need_video = encoder.audio is not None, encoder.visual is not None
        self.aligner = StepAligner(
            self.need_audio, self.need_video, encoder.steps_per_second, frame_pool
        )
        self.observation = StreamingObservation(layout)
        self.times = StageTimes()
        self.faces = (
            FaceCropper(
                encoder.visual.input_size,
                face or FaceConfig(**encoder.config["visual"].get("face", {})),
                load_cascade(),
                face_lookahead,
            )
            if encoder.visual is not None
            else None
        )
        self.step_encoder = StepEncoder(encoder, level, self.faces, inference, calibration)
        """Encodes each step (``inference``: the branch CNNs' path, see
        :mod:`avemotion.encoders.fast`; ``calibration``: real inputs for its int8 ranges)."""
        self._lookahead_step = 0
        self.reset()

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_run(
        cls,
        run_dir: str | os.PathLike[str],
        encoder_dir: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> OnlineRecognizer:
        """Load a trained run and the encoder its store was extracted with.

        The run's ``config.json`` names its feature store; the store's metadata names the
        encoder directory (``encoder_dir``), its identity and the extraction ``level``.
        Pass ``encoder_dir`` to use a moved copy; its identity and classes must match.
        """
        from avemotion.posterior import load_posterior_model
        from avemotion.training.run_dir import POSTERIOR, read_run_config
        from avemotion.training.train import load_agent

        config = read_run_config(run_dir)
        if config.get("agent_input") == "posteriors":  # the agent steps its log-posteriors
            kwargs["posterior"] = load_posterior_model(Path(run_dir) / POSTERIOR)
        store = training_store(config, str(run_dir))
        meta = store.meta
        enc_path = encoder_dir if encoder_dir is not None else meta.get("encoder_dir")
        if enc_path is None:
            raise ValueError(
                f"{store.path}: meta.json: no encoder_dir (the store was not extracted by avemotion); pass encoder_dir"
            )
        encoder = load_encoder(enc_path)
        if meta.get("modality") not in (None, "unknown", encoder.modality):
            raise ValueError(
                f"{enc_path}: modality: the encoder is {encoder.modality}, the store was extracted as {meta['modality']}"
            )
        if meta.get("encoder") not in (None, "unknown", encoder.identity):
            warnings.warn(
                f"{enc_path}: encoder {encoder.identity} does not describe itself as the one the store "
                f"was extracted with ({meta['encoder']}); check that it is the same",
                stacklevel=2,
            )
        if "level" not in meta:
            raise ValueError(f"{store.path}: meta.json: no level (embedding, fusion or temporal)")
        if list(config["class_names"]) != list(store.class_names):
            raise ValueError(f"{run_dir}: class_names differ from the store's {store.class_names}")
        layout = run_layout(config, store)
        try:
            agent = load_agent(run_dir)
        except RuntimeError as error:  # a state dict that no longer fits the agent code
            reason = " ".join(line.strip() for line in str(error).strip().splitlines()[:2])[:300]
            raise ValueError(f"{run_dir}: the trained agent cannot be loaded ({reason})") from None
        kwargs.setdefault("frame_pool", int(meta.get("frame_pool", 1)))
        kwargs["speaker"] = speaker_hook(store, kwargs.pop("speaker_state", None))
        return cls(encoder, agent, layout, meta["level"], store.class_names, **kwargs)

    # ------------------------------------------------------------------ state
    @property
    def modality(self) -> str:
        return self.encoder.modality

    @property
    def steps(self) -> list[StepResult]:
        """Every step encoded since the last :meth:`reset`."""
        return list(self._steps)

    @property
    def decision(self) -> StepResult | None:
        """The step at which the agent answered, or ``None``."""
        return self._decision

    @property
    def decided(self) -> bool:
        return self._decision is not None

    @property
    def steps_encoded(self) -> int:
        return len(self._steps)

    @property
    def total_steps(self) -> int:
        """Steps the stream has held so far (encoded or not)."""
        return self.aligner.next_step

    def new_utterance(self) -> None:
        """Start the next utterance of the same stream: the step counter, media buffers,
        LSTM state, posterior state, observation and agent start afresh; the loaded models
        and the speaker state (earlier utterances, added by :meth:`finish`) are kept.
        An utterance left without :meth:`finish` adds nothing to the speaker state."""
        self.aligner.reset()
        self.observation.reset()
        if self.posterior is not None:
            self.posterior.reset()
        self.agent.reset()
        self.step_encoder.reset()
        self._steps: list[StepResult] = []
        self._decision: StepResult | None = None
        self._agent_before: Any = None
        self._last_obs: np.ndarray | None = None
        self._lookahead_step = 0
        self.speaker.begin()
        if self.faces is not None:
            self.faces.reset()

    reset = new_utterance
    """The older name of :meth:`new_utterance`."""

    def close(self) -> None:
        """Stop the face-search worker threads (the recognizer is unusable afterwards)."""
        if self.faces is not None:
            self.faces.close()

    # ------------------------------------------------------------------ input
    def feed_audio(self, samples: np.ndarray, rate: int = AUDIO_RATE) -> list[StepResult]:
        """Append mono audio samples (16 kHz); return the steps completed by them."""
        if rate != AUDIO_RATE:
            raise StreamError(
                f"audio: rate: expected {AUDIO_RATE} Hz samples (resample first), got {rate}"
            )
        self.aligner.add_audio(samples)
        return self._advance()

    def feed_video(
        self,
        frames: Sequence[np.ndarray] | np.ndarray,
        times: Sequence[float] | np.ndarray,
        fps: float | None = None,
    ) -> list[StepResult]:
        """Append RGB uint8 frames with their times in seconds; return the steps completed."""
        self.aligner.add_video(frames, times, fps)
        self._track_ahead()
        return self._advance()

    def feed(
        self,
        audio: np.ndarray | None = None,
        frames: Sequence[np.ndarray] | None = None,
        times: Sequence[float] | None = None,
        fps: float | None = None,
    ) -> list[StepResult]:
        """Feed audio and/or video at once; return the steps completed."""
        done: list[StepResult] = []
        if frames is not None:
            done += self.feed_video(frames, times if times is not None else [], fps)
        if audio is not None:
            done += self.feed_audio(audio)
        return done

    def finish(self) -> dict[str, Any]:
        """End the stream: release the last steps, force an answer if none, return :meth:`summary`."""
        self.aligner.end()
        self._advance()
        if not self._steps:
            if self.aligner.cut_steps:
                raise StreamError(
                    "video: the video ends before the first step's centre: no step has both "
                    "audio and video"
                )
            need = f"{WINDOW_SAMPLES / AUDIO_RATE:.3f} s"
            raise StreamError(
                f"stream: ended before its first step was complete (a step needs {need} of media)"
            )
        if self._decision is None:
            self._force(self._steps[-1])
        self.speaker.end()
        return self.summary()

    def summary(self) -> dict[str, Any]:
        """The decision so far: class name, time, steps encoded against total, posteriors
        (the encoder's, and the one the agent read, at the decision or the last step).

        ``decision_time_s`` is the centre of the decision step's window (where the step sits
        on the timeline); ``decision_media_end_s`` is the stream time by which all of that
        step's media had arrived, the earliest a live answer can exist.
        """
        decision = self._decision
        last = decision if decision is not None else (self._steps[-1] if self._steps else None)
        return {
            "decision": None if decision is None else self.class_names[decision.prediction],  # type: ignore[index]
            "decision_step": None if decision is None else decision.step,
            "decision_time_s": None if decision is None else round(decision.time_s, 4),
            "decision_media_end_s": None
            if decision is None
            else round(decision.time_s + WINDOW_SAMPLES / 2 / AUDIO_RATE, 4),
            "forced": bool(decision is not None and decision.forced),
            "steps_encoded": self.steps_encoded,
            "total_steps": self.total_steps,
            "cut_steps": self.aligner.cut_steps,
            "posteriors": None
            if last is None
            else {n: float(p) for n, p in zip(self.posterior_names, last.posteriors)},
            "agent_posteriors": None
            if last is None or last.agent_posteriors is None
            else {n: float(p) for n, p in zip(self.class_names, last.agent_posteriors)},
            "modality": self.modality,
            "steps_per_second": self.aligner.steps_per_second,
            **self.speaker.report(),
        }

    # ------------------------------------------------------------------ stepping
    def _track_ahead(self) -> None:
        """Queue face tracking for coming steps whose frames are known (see FaceCropper)."""
        if self.faces is None or not self.faces.lookahead or self._decision is not None:
            return
        start = max(self._lookahead_step, self.aligner.next_step)
        for index, frames in self.aligner.upcoming_frames(start):
            self.faces.request(frames)
            self._lookahead_step = index + 1

    def _advance(self) -> list[StepResult]:
        done: list[StepResult] = []
        for media in self.aligner.steps():
            if self._decision is not None and self.stop_on_decision:
                continue  # counted in total_steps, never encoded
            done.append(self._encode(media))
        return done

    def _encode(self, media: StepMedia) -> StepResult:
        start = time.perf_counter()
        row, posteriors = self.step_encoder.encode(media, self.times)
        row = self.speaker.step(row)
        if self._decision is not None:  # encoding on after the answer (stop_on_decision=False)
            result = StepResult(
                media.index,
                media.time_s,
                posteriors,
                None,
                True,
                self._decision.prediction,
                self._decision.forced,
            )
        else:
            row, read = self._agent_row(row)
            obs = self.observation.advance(row)
            with self.times.stage("policy"):
                self._agent_before = copy.copy(self.agent)
                action = int(self.agent.act(obs, np.ones(len(self.class_names) + 1, dtype=np.int8)))
            self._last_obs = obs
            result = StepResult(
                media.index,
                media.time_s,
                posteriors,
                action,
                action != 0,
                action - 1 if action else None,
                agent_posteriors=read
                if read is not None
                else getattr(self.agent, "last_posterior", None),
            )
        self._steps.append(result)
        if result.action:
            self._decision = result
            if self.stop_on_decision and self.faces is not None:
                self.faces.cancel()
        elif result.action == 0 and self.observation.t >= self.observation.max_length:
            self._force(result)
        self.times.step_latencies.append(time.perf_counter() - start)
        return result

    def _agent_row(self, row: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """What the agent steps for a store-level row, and the posterior it read: the row
        itself, or with a posterior model its log-posteriors (as ``evaluate`` gives them)."""
        if self.posterior is None:
            return row, None
        with self.times.stage("policy"):  # the posterior model is the policy's first stage
            read = self.posterior.update(row)
        return log_posteriors(read), read

    def _force(self, last: StepResult) -> None:
        """Answer on ``last`` with waiting masked, from the agent's state before that step."""
        assert self._agent_before is not None and self._last_obs is not None
        mask = np.ones(len(self.class_names) + 1, dtype=np.int8)
        mask[0] = 0
        with self.times.stage("policy"):
            self.agent = self._agent_before
            action = int(self.agent.act(self._last_obs, mask))
        if action == 0:
            raise RuntimeError(
                f"agent {type(self.agent).__name__}: waited although waiting was masked"
            )
        last.action, last.decided, last.prediction, last.forced = action, True, action - 1, True
        self._decision = last


def load_recognizer(
    run_dir: str | os.PathLike[str],
    encoder_dir: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> OnlineRecognizer:
    """Shorthand for :meth:`OnlineRecognizer.from_run`."""
    return OnlineRecognizer.from_run(Path(run_dir), encoder_dir, **kwargs)

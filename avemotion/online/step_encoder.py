"""One stream step's media to its store-level row and class posteriors.

What extraction computes for a whole clip (:func:`avemotion.encoders.steps.clip_steps`, then
the encoder's branches, fusion and LSTM), computed step by step with nothing done twice:

- audio: consecutive step windows overlap by about 90 %; :class:`SlidingLogMel` transforms
  only each window's new log-mel frames and reuses the rest; a Whisper branch re-encodes
  the audio heard so far only on its schedule's steps (:class:`WhisperStream`);
- video: each frame is detected and cropped once (:class:`FaceCropper`) and embedded once,
  its embedding kept while a later step's frame pool may still hold it; a step's new
  frames go through the visual CNN in one batch;
- the branch CNNs run on the inference path chosen (:mod:`avemotion.encoders.fast`);
- the LSTM advances one step from the state kept here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from avemotion.encoders.bundle import Encoder
from avemotion.encoders.fast import Calibration, accelerate
from avemotion.encoders.fast_head import head_runners
from avemotion.encoders.frontend import SlidingLogMel
from avemotion.encoders.whisper_branch import WhisperStream
from avemotion.online.alignment import StepMedia
from avemotion.online.faces import FaceCropper
from avemotion.online.records import StageTimes


class StepEncoder:
    """Encodes a stream's steps in order; :meth:`reset` starts a new stream."""

    def __init__(
        self,
        encoder: Encoder,
        level: str,
        faces: FaceCropper | None,
        inference: str = "fp32",
        calibration: Calibration | None = None,
    ) -> None:
        self.encoder, self.level, self.faces = encoder, level, faces
        self.inference = inference
        self.runners = accelerate(encoder, inference, calibration)
        """The branch runners (``audio``/``visual``) on the chosen inference path."""
        self.heads = head_runners(encoder, inference)
        """ONNX Runtime runners of the fusion DNN and the LSTM step (none on fp32)."""
        self.mel = SlidingLogMel(encoder.steps_per_second)
        features = encoder.audio_features
        self.whisper = WhisperStream(features) if features is not None else None
        self.frames_embedded = 0
        """Video frames run through the visual CNN since construction."""
        self.reset()

    @property
    def backends(self) -> dict[str, str]:
        """Which backend runs each part (``torch``, ``onnxruntime``, ``onnxruntime-int8``)."""
        backends = {part: runner.backend for part, runner in self.runners.items()}
        for part in ("fusion", "temporal"):
            if getattr(self.encoder, part) is not None:
                backends[part] = self.heads[part].backend if part in self.heads else "torch"
        return backends

    def reset(self) -> None:
        self.mel.reset()
        if self.whisper is not None:
            self.whisper.reset()
        self.state: object = None
        self._embedded: dict[int, torch.Tensor] = {}

    def _visual(self, frames: Sequence[tuple[int, np.ndarray]], times: StageTimes) -> torch.Tensor:
        """The step's ``[1, dim]`` visual embedding: the mean over its pool of frames."""
        assert self.faces is not None
        with times.stage("face_detection"):
            crops = self.faces.crops(frames)
        with times.stage("visual_cnn"):
            indices = [index for index, _ in frames]
            new: dict[int, int] = {}  # frame index -> its first place in the pool
            for k, index in enumerate(indices):
                if index not in self._embedded and index not in new:
                    new[index] = k
            if new:  # the step's new frames, in one batch
                rows = self.runners["visual"](torch.from_numpy(crops[list(new.values())]))
                self._embedded.update(zip(new, rows))
                self.frames_embedded += len(new)
            oldest = min(indices)  # later steps' pools start no earlier
            self._embedded = {k: v for k, v in self._embedded.items() if k >= oldest}
            return torch.stack([self._embedded[index] for index in indices]).mean(0, keepdim=True)

    @torch.inference_mode()
    def encode(self, media: StepMedia, times: StageTimes) -> tuple[np.ndarray, np.ndarray]:
        """The step's row at the store's level and the class posteriors."""
        enc = self.encoder
        audio = visual = patch = None
        if media.window is not None:
            with times.stage("audio_frontend"):
                patch = self.mel.patch(media.index, media.window)
            with times.stage("audio_cnn"):
                rows = (
                    patch[None]
                    if self.whisper is None
                    else self.whisper.step(media.index, media.window)
                )
                audio = self.runners["audio"](rows)
        if media.frames is not None:
            visual = self._visual(media.frames, times)
        with times.stage("fusion"):
            joint = enc.embeddings(audio, visual)
            fusion = self.heads.get("fusion", enc.fusion.embed if enc.fusion else None)
            fused = fusion(joint) if fusion is not None else joint
            features = (
                fused
                if enc.temporal_input == ("embedding",)
                else enc.step_features(audio, visual, None if patch is None else patch[None])
            )
        out = None
        if enc.temporal is not None:
            with times.stage("lstm"):
                step = self.heads.get("temporal", enc.temporal_step)
                out, self.state = step(features, self.state)  # type: ignore[arg-type]
            posteriors = out[0, enc.temporal.hidden :]
        else:
            posteriors = self._head_posteriors(joint, audio, visual)
        row = {"embedding": joint, "fusion": fused, "temporal": out}[self.level]
        assert row is not None
        return row[0].numpy().astype(np.float32), posteriors.numpy().astype(np.float64)

    def _head_posteriors(
        self, joint: torch.Tensor, audio: torch.Tensor | None, visual: torch.Tensor | None
    ) -> torch.Tensor:
        """Posteriors of the deepest classifier head when the encoder has no LSTM."""
        enc = self.encoder
        if enc.fusion is not None:
            return torch.softmax(enc.fusion.head(enc.fusion.embed(joint)), -1)[0]
        heads = [
            torch.softmax(net.head(x), -1)[0]
            for net, x in ((enc.audio, audio), (enc.visual, visual))
            if net is not None and x is not None
        ]
        return torch.stack(heads).mean(0)

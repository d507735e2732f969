"""Speech -> transcript with word times, by PocketSphinx (the en-us model ships in its wheel).

Audio is processed as a stream: a voice-activity endpointer cuts it into utterances, and
each utterance is decoded on its own, so memory stays bounded by the longest utterance
(capped by ``max_utterance`` seconds) whatever the length of the recording.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.embed.base import to_audio
from polymodal.errors import ConfigError, OptionalDependencyError
from polymodal.translate.base import TextSpan, Translation, Translator, TranslatorConfig

__all__ = ["PocketSphinx"]

SAMPLE_RATE = 16_000
#: Samples converted to 16-bit PCM at a time when the whole signal is in memory.
_BLOCK = SAMPLE_RATE
_ALTERNATE = re.compile(r"\(\d+\)$")  # "read(2)": the dictionary's second pronunciation


def _is_filler(word: str) -> bool:
    """Silence and noise tokens (<s>, <sil>, [NOISE], ++BREATH++) are not words of the transcript."""
    return word.startswith(("<", "[", "+"))


def _pcm(samples: np.ndarray) -> bytes:
    pcm: bytes = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    return pcm


class PocketSphinx(Translator):
    """Transcribe speech; ``spans`` are the words with ``start``/``end`` seconds and a posterior.

    Silence (or audio without speech) gives ``Translation(text="")``.

    Options: ``vad_mode`` (0-3, higher drops more non-speech; default 0), ``vad_window``
    (0.3 s), ``vad_ratio`` (0.9), ``max_utterance`` (30 s: longer stretches of speech are
    decoded in pieces), ``lm`` and ``dict`` (paths replacing the language model and
    pronunciation dictionary), ``batch_size`` (16). ``model``: "default" (the packaged en-us
    acoustic model) or the directory of another PocketSphinx acoustic model.
    """

    family = "pocketsphinx"
    source = "audio"

    def __init__(self, config: TranslatorConfig) -> None:
        super().__init__(config)
        try:
            import pocketsphinx  # type: ignore[import-untyped,import-not-found,unused-ignore]
        except ImportError:
            raise OptionalDependencyError.for_package("pocketsphinx", "models", "Speech to text") from None
        opts = config.options
        self.vad_mode = int(opts.get("vad_mode", 0))
        self.vad_window = float(opts.get("vad_window", 0.3))
        self.vad_ratio = float(opts.get("vad_ratio", 0.9))
        self.max_utterance = float(opts.get("max_utterance", 30.0))
        if not 0 <= self.vad_mode <= 3:
            raise ConfigError(f"vad_mode must be 0, 1, 2 or 3, got {self.vad_mode}")
        if self.max_utterance <= 0:
            raise ConfigError(f"max_utterance must be positive, got {self.max_utterance}")
        kwargs: dict[str, Any] = {"samprate": SAMPLE_RATE, "loglevel": "FATAL"}
        if config.model != "default":
            kwargs["hmm"] = self._existing(config.model, "acoustic model directory")
        for key in ("lm", "dict"):
            if key in opts:
                kwargs[key] = self._existing(str(opts[key]), key)
        self._endpointer()  # check the VAD options now rather than on the first input
        try:
            self._decoder = pocketsphinx.Decoder(**kwargs)
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(f"cannot load the PocketSphinx model: {exc}") from exc
        self._frate = int(self._decoder.config["frate"])
        self._lock = threading.Lock()

    @staticmethod
    def _existing(path: str, what: str) -> str:
        if not Path(path).expanduser().exists():
            raise ConfigError(f"PocketSphinx {what} {path!r} does not exist")
        return str(Path(path).expanduser())

    def _endpointer(self) -> Any:
        from pocketsphinx import Endpointer  # type: ignore[import-untyped,import-not-found,unused-ignore]

        try:
            return Endpointer(
                window=self.vad_window, ratio=self.vad_ratio, vad_mode=self.vad_mode, sample_rate=SAMPLE_RATE
            )
        except ValueError as exc:
            raise ConfigError(f"invalid voice activity options: {exc}") from exc

    def _translate_batch(self, items: list[Any]) -> list[Translation]:
        out = []
        for item in items:
            samples = to_audio(item, SAMPLE_RATE)
            blocks = (samples[i : i + _BLOCK] for i in range(0, len(samples), _BLOCK))
            spans = tuple(self.transcribe_stream(blocks))
            out.append(Translation(text=" ".join(s.text for s in spans), spans=spans))
        return out

    def transcribe_stream(self, chunks: Iterable[np.ndarray]) -> Iterator[TextSpan]:
        """Words of a stream of mono float32 chunks at 16 kHz (any chunk sizes), as they are decoded.

        Words of an utterance come out when the speaker pauses (or ``max_utterance`` is
        reached), with times in seconds from the start of the stream.
        """
        ep = self._endpointer()
        frame_bytes = int(ep.frame_bytes)
        pending = b""
        utterance: list[bytes] = []
        start = 0.0  # stream time of the first sample in ``utterance``
        limit = int(self.max_utterance * SAMPLE_RATE * 2)
        size = 0
        for chunk in chunks:
            pending += _pcm(np.asarray(chunk, np.float32).reshape(-1))
            whole = len(pending) - len(pending) % frame_bytes
            for i in range(0, whole, frame_bytes):
                was_in_speech = ep.in_speech
                speech = ep.process(pending[i : i + frame_bytes])
                if speech is None:
                    continue
                if not was_in_speech and not utterance:
                    start = float(ep.speech_start)
                utterance.append(speech)
                size += len(speech)
                if not ep.in_speech or size >= limit:
                    yield from self._decode(utterance, start)
                    start += size / 2 / SAMPLE_RATE
                    utterance, size = [], 0
            pending = pending[whole:]
        if ep.in_speech:
            # The binding cannot take an empty buffer; one silent sample flushes the window as well.
            speech = ep.end_stream(pending or b"\0\0")
            if speech is not None:
                utterance.append(speech)
        if utterance:
            yield from self._decode(utterance, start)

    def _decode(self, utterance: list[bytes], offset: float) -> list[TextSpan]:
        with self._lock:
            dec = self._decoder
            dec.start_utt()
            dec.process_raw(b"".join(utterance), full_utt=True)
            dec.end_utt()
            if dec.hyp() is None:
                return []
            words = []
            for seg in dec.seg():
                if _is_filler(seg.word):
                    continue
                start = round(offset + seg.start_frame / self._frate, 3)
                end = round(offset + (seg.end_frame + 1) / self._frate, 3)
                # seg.prob is the word's posterior; log-math rounding can make it 1.0001
                words.append(
                    TextSpan(_ALTERNATE.sub("", seg.word), start=start, end=end, score=min(1.0, float(seg.prob)))
                )
            return words

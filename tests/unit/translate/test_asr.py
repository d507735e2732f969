"""PocketSphinx speech-to-text on speech synthesised by Debian's TTS engines.

Speech comes from ``festival`` with the ``kal_diphone`` voice (apt: festival festvox-kallpc16k),
which PocketSphinx transcribes almost word for word, and from ``espeak-ng`` (apt: espeak-ng),
whose formant voice is much harder for it, so its bound is generous. Tests skip, saying which
package to install, when a synthesiser is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pocketsphinx")

from polymodal.embed.base import to_audio
from polymodal.errors import ConfigError, OptionalDependencyError
from polymodal.media.types import AudioData
from polymodal.translate import Translation, TranslatorConfig, load
from polymodal.translate.asr import SAMPLE_RATE, PocketSphinx

FIRST = "please call stella and ask her to bring these things with her from the store"
SECOND = "open the door and turn on the light"
ESPEAK_SENTENCE = "we need more time to finish the project"
GAP = 1.5  # seconds of silence between the two sentences


@dataclass(frozen=True)
class Speech:
    """Two sentences with a pause between them, and where the pause lies."""

    samples: np.ndarray  # 16 kHz mono float32
    first_end: float  # seconds: end of FIRST
    second_start: float  # seconds: start of SECOND

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def _festival(text: str, out: Path) -> None:
    if shutil.which("text2wave") is None:
        pytest.skip("festival is not installed (apt-get install festival festvox-kallpc16k)")
    script = out.with_suffix(".txt")
    script.write_text(text)
    done = subprocess.run(
        ["text2wave", "-eval", "(voice_kal_diphone)", "-o", str(out), str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0 or not out.is_file():
        pytest.skip(f"festival's kal_diphone voice failed (apt-get install festvox-kallpc16k): {done.stderr[-200:]}")


def _espeak(text: str, out: Path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    subprocess.run(
        ["espeak-ng", "-v", "en-us+f2", "-s", "150", "-w", str(out), text], capture_output=True, timeout=60, check=True
    )


@pytest.fixture(scope="module")
def asr() -> PocketSphinx:
    engine = load(family="pocketsphinx")
    assert isinstance(engine, PocketSphinx)
    return engine


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Speech:
    folder = tmp_path_factory.mktemp("speech")
    first, second = folder / "first.wav", folder / "second.wav"
    _festival(FIRST, first)
    _festival(SECOND, second)
    a, b = to_audio(first, SAMPLE_RATE), to_audio(second, SAMPLE_RATE)
    gap = np.zeros(int(GAP * SAMPLE_RATE), np.float32)
    samples = np.concatenate([a, gap, b])
    return Speech(samples, first_end=len(a) / SAMPLE_RATE, second_start=(len(a) + len(gap)) / SAMPLE_RATE)


@pytest.fixture(scope="module")
def transcript(asr, speech) -> Translation:
    return asr.translate_one(speech.samples)


def _check_times(translation: Translation, duration: float) -> None:
    starts = [s.start for s in translation.spans]
    assert starts == sorted(starts)
    for s in translation.spans:
        assert s.start is not None and s.end is not None
        assert 0.0 <= s.start < s.end <= duration + 0.05, s
        assert s.score is not None and 0.0 <= s.score <= 1.0


def test_transcribes_clear_speech_with_word_times(transcript, speech, wer):
    assert wer(f"{FIRST} {SECOND}", transcript.text) <= 0.25, transcript.text
    assert transcript.text == " ".join(s.text for s in transcript.spans)
    _check_times(transcript, speech.duration)


def test_words_fall_in_their_sentence(transcript, speech, wer):
    """The pause splits the audio into two utterances; each word keeps its time in the stream."""
    assert wer(FIRST, transcript.between(0.0, speech.first_end)) <= 0.25
    assert wer(SECOND, transcript.between(speech.second_start, speech.duration)) <= 0.25
    assert not transcript.between(speech.first_end + 0.3, speech.second_start - 0.3)


def test_espeak_speech_is_mostly_transcribed(asr, tmp_path, wer):
    path = tmp_path / "espeak.wav"
    _espeak(ESPEAK_SENTENCE, path)
    got = asr.translate_one(path)  # a 22.05 kHz file: decoded and resampled to 16 kHz
    assert wer(ESPEAK_SENTENCE, got.text) <= 0.5, got.text
    _check_times(got, AudioData(to_audio(path, SAMPLE_RATE), SAMPLE_RATE).duration)


def test_silence_and_faint_noise_give_empty_text(asr):
    silence = np.zeros(3 * SAMPLE_RATE, np.float32)
    hiss = np.random.default_rng(0).normal(0, 0.003, 3 * SAMPLE_RATE).astype(np.float32)
    assert asr.translate([silence, hiss, np.zeros(0, np.float32)]) == [Translation(text="")] * 3


def test_streaming_gives_the_same_words_as_they_come(asr, speech, transcript):
    """Odd chunk sizes give the same words, and the first sentence's words come out before the
    stream has been read to its end (the audio is never held whole)."""
    consumed = 0

    def chunks():
        nonlocal consumed
        for i in range(0, len(speech.samples), 7_001):
            consumed = i + 7_001
            yield speech.samples[i : i + 7_001]

    stream = asr.transcribe_stream(chunks())
    first = next(stream)
    assert consumed < len(speech.samples)
    words = [first, *stream]
    assert [w.text for w in words] == [s.text for s in transcript.spans]
    np.testing.assert_allclose([w.start for w in words], [s.start for s in transcript.spans], atol=0.05)


def test_long_speech_is_decoded_in_bounded_pieces(speech, wer):
    """With ``max_utterance`` shorter than a sentence, speech is cut and decoded piece by piece."""
    pieces = load(family="pocketsphinx", options={"max_utterance": 2.0})
    first = speech.samples[: int(speech.first_end * SAMPLE_RATE)]
    got = pieces.translate_one(AudioData(first, SAMPLE_RATE))
    assert wer(FIRST, got.text) <= 0.5, got.text
    _check_times(got, speech.first_end)


@pytest.mark.parametrize("seconds", [1.5, 2.0 + 7 / SAMPLE_RATE])
def test_speech_cut_off_mid_sentence_keeps_its_last_words(asr, speech, seconds):
    """Audio ending inside speech (on a VAD frame boundary or not) still flushes the last words."""
    got = asr.translate_one(speech.samples[: int(seconds * SAMPLE_RATE)])
    assert got.text.startswith("please call"), got.text
    assert got.spans[-1].end > seconds - 0.3
    _check_times(got, seconds)


@pytest.mark.parametrize("options", [{"vad_mode": 5}, {"max_utterance": 0}, {"vad_ratio": 2.0}])
def test_bad_options_are_refused(options):
    with pytest.raises(ConfigError):
        load(family="pocketsphinx", options=options)


def test_missing_model_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load(family="pocketsphinx", model=str(tmp_path / "no-model"))


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)
    with pytest.raises(OptionalDependencyError, match=r"polymodal\[models\]"):
        PocketSphinx(TranslatorConfig(family="pocketsphinx"))

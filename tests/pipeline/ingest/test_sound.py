"""Sound salience above the camera's own room tone, and speech from the real voice-activity model."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave

import numpy as np
import pytest

from pipeline.activity import ActivityConfig, SoundConfig
from pipeline.ingest.measures import measure_audio
from pipeline.ingest.sound import frame_salience, next_noise_floor
from pipeline.ingest.voice import speech_probability

RATE = 16_000
FRAME = 640  # one audio token: 40 ms
CONFIG = ActivityConfig()


def room_tone(seconds: float, level_dbfs: float = -42.0, hum_dbfs: float = -46.0, seed: int = 0) -> np.ndarray:
    """Coloured noise at `level_dbfs` RMS plus 50 Hz mains hum and its third harmonic."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    noise = np.convolve(rng.standard_normal(n), np.ones(8) / 8, mode="same")
    noise *= 10 ** (level_dbfs / 20) / np.sqrt(np.mean(noise**2))
    t = np.arange(n) / RATE
    hum = 10 ** (hum_dbfs / 20) * np.sqrt(2) * (np.sin(2 * np.pi * 50 * t) + 0.5 * np.sin(2 * np.pi * 150 * t))
    return (noise + hum).astype(np.float32)


def tone(seconds: float, frequency: float, level_dbfs: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (10 ** (level_dbfs / 20) * np.sqrt(2) * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def spoken(text: str, peak_dbfs: float) -> np.ndarray:
    """Speech from Debian's espeak-ng, at 16 kHz, scaled to `peak_dbfs`."""
    assert shutil.which("espeak-ng"), "espeak-ng is a test dependency (scripts/install-system-packages.sh)"
    audio = subprocess.run(["espeak-ng", "--stdout", text], capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(audio)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32)
    resampled = samples[np.arange(0, len(samples), rate / RATE).astype(int)]
    return (resampled / np.abs(resampled).max() * 10 ** (peak_dbfs / 20)).astype(np.float32)


def test_the_floor_is_learned_from_the_cameras_first_audio_so_room_tone_is_never_a_sound():
    audio = measure_audio(room_tone(10), RATE, None, CONFIG)
    assert audio.floor_used_dbfs == pytest.approx(-41.5, abs=1.5)  # the room tone's own level, not a default
    assert audio.salience.max() < 0.2 and np.percentile(audio.salience, 95) < 0.1
    assert audio.speech.max() < 0.5


def test_a_sound_above_the_room_tone_is_salient_where_it_sounds():
    wave_ = room_tone(10)
    wave_[4 * RATE : 5 * RATE] += tone(1.0, 1000, -28)
    audio = measure_audio(wave_, RATE, None, CONFIG)
    inside, outside = audio.salience[100:125], np.r_[audio.salience[:98], audio.salience[127:]]
    assert inside.min() >= CONFIG.audio_active and outside.max() < 0.2


def test_a_tone_no_louder_than_the_room_tone_stands_out_by_its_spectrum():
    wave_ = room_tone(10)
    wave_[2 * RATE : 3 * RATE] += tone(1.0, 3000, -44)  # 2 dB below the room tone's level
    salience = frame_salience(wave_, FRAME, RATE, -41.5, SoundConfig())
    assert salience[52:73].min() > 0.2 > salience[:48].max()


def test_the_floor_drops_at_once_and_rises_slowly_and_silence_is_not_a_floor():
    quiet, loud = room_tone(10, level_dbfs=-60, hum_dbfs=-70), room_tone(10, level_dbfs=-30, hum_dbfs=-40)
    used, after = next_noise_floor(-40.0, quiet, FRAME, SoundConfig())
    assert used == pytest.approx(-60, abs=1.5) and after == used  # dropped at once to the quiet clip
    floors = []
    for _ in range(4):
        used, after = next_noise_floor(after, loud, FRAME, SoundConfig())
        floors.append(used)
    assert np.diff(floors) == pytest.approx([1.0] * 3)  # a new steady noise raises it 1 dB per clip
    silence_floor, _ = next_noise_floor(None, np.zeros(RATE * 10, np.float32), FRAME, SoundConfig())
    assert silence_floor == SoundConfig().min_floor_dbfs


def test_speech_is_told_apart_from_other_sound_by_the_voice_activity_model():
    voice = spoken("Hello, is anybody there? Please open the door.", peak_dbfs=-18)
    wave_ = room_tone(10)
    wave_[RATE : RATE + len(voice)] += voice
    wave_[7 * RATE : 8 * RATE] += tone(1.0, 1000, -25)
    audio = measure_audio(wave_, RATE, None, CONFIG)
    speaking = slice(25 + 5, 25 + len(voice) // FRAME - 5)
    assert np.mean(audio.speech[speaking] >= CONFIG.speech_active) > 0.7
    assert audio.speech[175:200].max() < CONFIG.speech_active  # the tone is sound, not speech
    assert audio.speech[:20].max() < CONFIG.speech_active  # room tone neither
    assert np.mean(audio.token_salience(CONFIG.speech_active)[speaking] >= 0.5) > 0.7


def test_the_voice_model_takes_16_khz_only():
    with pytest.raises(ValueError, match="16000 Hz"):
        speech_probability(np.zeros(100, np.float32), 8000)
    assert speech_probability(np.zeros(0, np.float32)).shape == (0,)

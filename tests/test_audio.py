"""Audio loading: every format, rate and channel count to mono float32 at 16 kHz; failures are
AudioErrors naming the file; ``decode_clips`` reports bad files and keeps going."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kwspot.audio import SAMPLE_RATE, fit_length, load_audio, resample, to_mono
from kwspot.clips import decode_clips
from kwspot.data import Utterance
from kwspot.errors import AudioError, KwspotError

INT16_STEP = 1.0 / 32768


def sine(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(round(rate * seconds)) / rate)


def peak_hz(audio: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    """Frequency of the strongest FFT bin (Hann-windowed, DC excluded)."""
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    spectrum[0] = 0.0
    return float(np.fft.rfftfreq(len(audio), 1.0 / rate)[np.argmax(spectrum)])


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


# --- formats -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subtype", "tolerance"),
    [("PCM_16", INT16_STEP), ("PCM_24", 2.0**-23), ("PCM_32", 2.0**-31), ("FLOAT", 1e-7)],
)
def test_pcm_subtypes_load_as_float32_in_unit_range(tone_wav, subtype, tolerance) -> None:
    path = tone_wav(f"{subtype}.wav", subtype=subtype, amplitude=0.9)
    assert sf.info(str(path)).subtype == subtype
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1 and len(audio) == SAMPLE_RATE
    assert np.abs(audio).max() <= 1.0
    np.testing.assert_allclose(audio, sine(1000, SAMPLE_RATE, amplitude=0.9), atol=tolerance + 1e-7)


@pytest.mark.parametrize(("dtype", "subtype"), [(np.int16, "PCM_16"), (np.int32, "PCM_32")])
def test_integer_full_scale_maps_to_unit_range(tmp_path: Path, dtype, subtype) -> None:
    """Raw integer samples are scaled by 2**(bits-1), not returned as integers."""
    info = np.iinfo(dtype)
    raw = np.array([info.min, info.max, 0, info.min // 2, info.max // 4] * 20, dtype=dtype)
    path = tmp_path / f"int_{subtype}.wav"
    sf.write(str(path), raw, SAMPLE_RATE, subtype=subtype)
    audio = load_audio(path)
    assert audio.dtype == np.float32
    expected = raw.astype(np.float64) / -float(info.min)
    np.testing.assert_allclose(audio, expected, atol=1e-6)
    assert audio.min() == -1.0 and 0.999 < audio.max() <= 1.0


def test_flac_is_lossless(tone_wav) -> None:
    audio = load_audio(tone_wav("tone.flac", subtype="PCM_16"))
    assert audio.dtype == np.float32 and len(audio) == SAMPLE_RATE
    np.testing.assert_allclose(audio, sine(1000, SAMPLE_RATE), atol=INT16_STEP)


def test_ogg_vorbis_decodes(tone_wav) -> None:
    audio = load_audio(tone_wav("tone.ogg", subtype="VORBIS"))
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - SAMPLE_RATE) <= 64
    assert peak_hz(audio) == pytest.approx(1000, abs=2)
    reference = sine(1000, SAMPLE_RATE)[: len(audio)]
    assert np.corrcoef(audio[:16000], reference[:16000])[0, 1] > 0.99
    assert rms(audio) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


# --- rates and channels ------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
@pytest.mark.parametrize("seconds", [1.0, 0.37])
def test_resampled_to_16k_keeps_length_and_pitch(tone_wav, rate, seconds) -> None:
    path = tone_wav(f"r{rate}.wav", rate=rate, seconds=seconds, subtype="FLOAT")
    audio = load_audio(path)
    assert audio.dtype == np.float32
    assert abs(len(audio) - round(rate * seconds) * SAMPLE_RATE / rate) <= 1
    assert peak_hz(audio) == pytest.approx(1000, abs=1.5 / seconds)
    # A band-limited resampler keeps the level: RMS of 0.5 sine is 0.354 (edges excluded).
    assert rms(audio[200:-200]) == pytest.approx(0.5 / np.sqrt(2), rel=1e-3)


def test_8k_sine_is_not_aliased_or_shifted(tone_wav) -> None:
    """3 kHz at 8 kHz -> 16 kHz: the only tone is still at 3 kHz, nothing mirrored at 5 kHz."""
    audio = load_audio(tone_wav("a.wav", freq=3000, rate=8000, subtype="FLOAT"))
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    freqs = np.fft.rfftfreq(len(audio), 1 / SAMPLE_RATE)
    assert freqs[np.argmax(spectrum)] == pytest.approx(3000, abs=1)
    assert spectrum[np.abs(freqs - 5000) < 50].max() < 1e-3 * spectrum.max()


def test_target_rate_argument(tone_wav) -> None:
    audio = load_audio(tone_wav(rate=16000), sample_rate=8000)
    assert len(audio) == 8000
    assert peak_hz(audio, 8000) == pytest.approx(1000, abs=1)


def test_resample_is_noop_at_same_rate() -> None:
    x = np.linspace(-1, 1, 100)
    y = resample(x, 16000, 16000)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, x.astype(np.float32))


def test_stereo_is_averaged_to_mono(tmp_path: Path) -> None:
    left, right = sine(1000, SAMPLE_RATE, amplitude=0.6), sine(300, SAMPLE_RATE, amplitude=0.2)
    path = tmp_path / "stereo.wav"
    sf.write(str(path), np.stack([left, right], axis=1), SAMPLE_RATE, subtype="FLOAT")
    audio = load_audio(path)
    assert audio.shape == (SAMPLE_RATE,) and audio.dtype == np.float32
    np.testing.assert_allclose(audio, (left + right) / 2, atol=1e-6)


def test_opposite_channels_cancel(tmp_path: Path) -> None:
    x = sine(1000, SAMPLE_RATE)
    path = tmp_path / "phase.wav"
    sf.write(str(path), np.stack([x, -x], axis=1), SAMPLE_RATE, subtype="PCM_16")
    np.testing.assert_allclose(load_audio(path), 0.0, atol=INT16_STEP)


def test_multichannel_8k_is_mixed_then_resampled(tone_wav) -> None:
    # channel c holds sine / (c + 1): the mean of 4 channels is sine * (1 + 1/2 + 1/3 + 1/4) / 4
    path = tone_wav("quad.wav", rate=8000, channels=4, subtype="FLOAT")
    audio = load_audio(path)
    assert audio.shape == (SAMPLE_RATE,)
    gain = (1 + 1 / 2 + 1 / 3 + 1 / 4) / 4
    assert rms(audio[200:-200]) == pytest.approx(gain * 0.5 / np.sqrt(2), rel=1e-3)
    assert peak_hz(audio) == pytest.approx(1000, abs=1)


def test_to_mono_leaves_mono_alone() -> None:
    x = np.arange(5, dtype=np.float32)
    assert to_mono(x) is x


# --- failures ----------------------------------------------------------------------------------


def data_offset(wav_bytes: bytes) -> int:
    """Byte offset of the first sample in a canonical WAV (after the ``data`` chunk header)."""
    return wav_bytes.index(b"data") + 8


def assert_audio_error(path: Path) -> AudioError:
    with pytest.raises(AudioError) as info:
        load_audio(path)
    assert path.name in str(info.value)
    assert isinstance(info.value, KwspotError)
    return info.value


def test_missing_file(tmp_path: Path) -> None:
    err = assert_audio_error(tmp_path / "nowhere_123.wav")
    assert "no such file" in str(err)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty_clip.wav"
    path.write_bytes(b"")
    assert "empty" in str(assert_audio_error(path))


def test_header_only_wav(tone_wav) -> None:
    path = tone_wav("header_only.wav")
    data = path.read_bytes()
    path.write_bytes(data[: data_offset(data)])
    assert_audio_error(path)


def test_wav_cut_inside_header(tone_wav) -> None:
    path = tone_wav("cut_header.wav")
    path.write_bytes(path.read_bytes()[:20])
    assert_audio_error(path)


@pytest.mark.parametrize(("channels", "keep_bytes"), [(1, 8001), (1, 2), (2, 8003)])
def test_wav_cut_mid_data_reads_the_complete_frames(tone_wav, channels, keep_bytes) -> None:
    """libsndfile reads a WAV cut mid-data up to the last whole frame; load_audio passes that on
    with a warning (an AudioError only when nothing decodes), so the result is the true prefix."""
    from kwspot.audio import AudioWarning

    path = tone_wav(f"cut_{channels}_{keep_bytes}.wav", channels=channels)
    full = load_audio(path)
    data = path.read_bytes()
    path.write_bytes(data[: data_offset(data) + keep_bytes])
    with pytest.warns(AudioWarning, match=f"{path.name}: truncated"):
        partial = load_audio(path)
    frames = keep_bytes // (2 * channels)
    assert len(partial) == frames
    np.testing.assert_array_equal(partial, full[:frames])


def test_truncated_flac(tone_wav) -> None:
    path = tone_wav("cut.flac")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert_audio_error(path)


@pytest.mark.parametrize("cut", [1, 1001])  # mid-sample, and whole samples missing
def test_truncated_wav_loads_with_a_warning_naming_the_file(tone_wav, cut: int) -> None:
    from kwspot.audio import AudioWarning, iter_audio_blocks

    path = tone_wav("cut.wav")
    whole = load_audio(path)
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.warns(AudioWarning, match=r"cut\.wav: truncated"):
        audio = load_audio(path)
    assert len(audio) == len(whole) - -(-cut // 2)  # 16-bit samples: the partial one is dropped
    np.testing.assert_array_equal(audio, whole[: len(audio)])
    with pytest.warns(AudioWarning, match="truncated"):
        blocks = list(iter_audio_blocks(path))
    assert sum(map(len, blocks)) == len(audio)


def test_whole_wav_loads_without_a_warning(tone_wav) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_audio(tone_wav("whole.wav"))


def test_truncated_wav_is_one_warning_line_in_the_cli(tone_wav, capsys) -> None:
    from kwspot.cli import main

    path = tone_wav("cut.wav")
    path.write_bytes(path.read_bytes()[:-1])
    assert main(["detect", str(path)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kwspot: warning: ") and "cut.wav" in err[0]


needs_mp3 = pytest.mark.skipif("MP3" not in sf.available_formats(),
                               reason="this libsndfile has no MP3 support")


@needs_mp3
def test_mp3_decodes_and_dataset_scans_include_it(tmp_path: Path) -> None:
    """One behaviour for MP3: ``detect`` decodes it and so does every dataset scan."""
    from kwspot.datasets.folder import scan_folder

    for label in ("yes", "no"):
        (tmp_path / label).mkdir()
        tone = sine(440 if label == "yes" else 880, SAMPLE_RATE).astype(np.float32)
        sf.write(str(tmp_path / label / "spk1_nohash_0.mp3"), tone, SAMPLE_RATE, format="MP3")
    audio = load_audio(tmp_path / "yes" / "spk1_nohash_0.mp3")
    assert abs(len(audio) - SAMPLE_RATE) < 0.1 * SAMPLE_RATE
    assert abs(peak_hz(audio) - 440) < 10
    rows = scan_folder(tmp_path, validation_pct=0, test_pct=0)
    assert sorted(Path(u.path).suffix for u in rows) == [".mp3", ".mp3"]


@needs_mp3
def test_corrupt_mp3_is_one_line_without_decoder_noise(tmp_path: Path, capfd) -> None:
    good = tmp_path / "good.mp3"
    sf.write(str(good), sine(440, SAMPLE_RATE).astype(np.float32), SAMPLE_RATE, format="MP3")
    data = good.read_bytes()
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(data[:200] + bytes(range(256)) * 20 + data[3000:])
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"ID3" + bytes(range(256)) * 40)
    for path in (bad, junk):
        with pytest.raises(AudioError, match="not a decodable audio file") as info:
            load_audio(path)
        assert "\n" not in str(info.value) and "does not exist" not in str(info.value)
    _, err = capfd.readouterr()
    assert "resync" not in err and "mpg123" not in err and err == ""


def test_text_file_named_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes_not_audio.wav"
    path.write_text("this is not audio\n" * 50)
    assert_audio_error(path)


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "looks_like.wav"
    folder.mkdir()
    assert "directory" in str(assert_audio_error(folder))


def test_nan_samples(tmp_path: Path) -> None:
    x = sine(1000, SAMPLE_RATE)
    x[100] = np.nan
    path = tmp_path / "nan_clip.wav"
    sf.write(str(path), x, SAMPLE_RATE, subtype="FLOAT")
    assert_audio_error(path)


# --- fit_length --------------------------------------------------------------------------------


def test_fit_length_pads_with_zeros_at_the_end() -> None:
    x = np.arange(1, 6, dtype=np.float32)
    y = fit_length(x, 8)
    np.testing.assert_array_equal(y, [1, 2, 3, 4, 5, 0, 0, 0])
    assert y.dtype == np.float32


def test_fit_length_centre_crops() -> None:
    x = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(fit_length(x, 4), [3, 4, 5, 6])
    np.testing.assert_array_equal(fit_length(x, 5), [2, 3, 4, 5, 6])
    np.testing.assert_array_equal(fit_length(x, 10), x)


# --- decode_clips ------------------------------------------------------------------------------


def test_decode_clips_reports_bad_files_and_keeps_going(tmp_path: Path, tone_wav) -> None:
    good_a = tone_wav("good_a.wav", seconds=1.2)
    good_b = tone_wav("good_b.wav", rate=8000, seconds=0.5, freq=500)
    broken = tmp_path / "broken_text.wav"
    broken.write_text("not a wav")
    missing = tmp_path / "missing_clip.wav"
    empty = tmp_path / "empty_clip.wav"
    empty.write_bytes(b"")
    rows = [
        Utterance(str(good_a), "yes", "train", "s1"),
        Utterance(str(broken), "no", "train", "s2"),
        Utterance(None, "_silence_", "train"),
        Utterance(str(missing), "up", "train", "s3"),
        Utterance(str(good_b), "down", "train", "s4"),
        Utterance(str(empty), "go", "train", "s5"),
    ]
    seen: list[int] = []
    table = decode_clips(rows, 16000, workers=2, progress=seen.append)
    assert sum(seen) == len(rows)
    assert table.utterances == [rows[0], rows[2], rows[4]]
    assert table.audio.shape == (3, 16000) and table.audio.dtype == np.float32
    np.testing.assert_array_equal(
        table.audio,
        np.stack(
            [
                fit_length(load_audio(good_a), 16000),
                np.zeros(16000),
                fit_length(load_audio(good_b), 16000),
            ]
        ),
    )
    assert not table.audio[1].any()  # silence row
    assert not table.audio[2, 8000:].any() and table.audio[2, :8000].any()  # 0.5 s padded
    assert len(table.bad_files) == 3
    for bad, name in zip(
        table.bad_files, ["broken_text.wav", "missing_clip.wav", "empty_clip.wav"], strict=True
    ):
        assert name in bad


def test_decode_clips_all_bad_gives_empty_table(tmp_path: Path) -> None:
    rows = [Utterance(str(tmp_path / f"gone{i}.wav"), "yes", "test") for i in range(3)]
    table = decode_clips(rows, 400, workers=1)
    assert table.audio.shape == (0, 400) and table.utterances == []
    assert len(table.bad_files) == 3


def test_absurd_sample_rates_are_refused_before_decoding(tmp_path) -> None:
    """A 32 KB WAV whose header says 1 Hz would become hours of audio after resampling."""
    import struct

    from kwspot.audio import iter_audio_blocks

    path = tmp_path / "one_hz.wav"
    sf.write(str(path), np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    header = bytearray(path.read_bytes())
    header[24:28] = struct.pack("<I", 1)  # sample rate
    header[28:32] = struct.pack("<I", 2)  # byte rate
    path.write_bytes(bytes(header))
    with pytest.raises(AudioError, match="1 Hz"):
        load_audio(path)
    with pytest.raises(AudioError, match="1 Hz"):
        list(iter_audio_blocks(path))


@pytest.mark.parametrize(("value", "message"), [(1e300, "overflow 32-bit float"),
                                                (np.nan, "NaN or infinite"),
                                                (np.inf, "NaN or infinite")])
def test_float64_overflow_and_nan_get_true_messages(tmp_path: Path, value: float,
                                                    message: str) -> None:
    from kwspot.audio import iter_audio_blocks

    audio = np.zeros(16000)
    audio[100] = value
    path = tmp_path / "odd.wav"
    sf.write(str(path), audio, SAMPLE_RATE, subtype="DOUBLE")
    assert message in str(assert_audio_error(path))
    with pytest.raises(AudioError, match=message):
        list(iter_audio_blocks(path))

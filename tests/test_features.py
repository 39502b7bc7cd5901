"""The MFCC / log-mel frontend against an independent librosa + scipy reference.

Frame alignment: the frontend frames like TensorFlow's ``tf.signal.stft(frame_length=480,
fft_length=512)``: frame t is samples ``[160 t, 160 t + 480)``, Hann-windowed, zero-padded at the
end to 512 (1 s -> 98 frames). librosa with ``center=False`` takes 512-sample frames and puts the
480-point window in their middle (16 zeros each side), i.e. frame t weights samples
``[160 t + 16, 160 t + 496)``, and gives 97 frames. Padding the signal with 16 zeros on both
sides before librosa makes its frame t cover exactly the frontend's samples; the zero padding
of the FFT then only changes the phase, not the power. That is the reference used here.

Precision: the frontend runs in float32, the reference in float64. float32 FFT error in a bin is
about eps32 x the frame's energy, so in a bin whose mel energy m is far below the frame's peak
the log error grows like eps32 * peak / (m + 1e-6). The tests check (a) a tight absolute bound
where m >= 1e-6 of the frame's peak, and (b) that bound scaled by eps32 everywhere.
"""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import scipy.fft
import torch

from kwspot.audio import fit_length, load_audio
from kwspot.errors import KwspotError
from kwspot.features import FeatureConfig, Frontend, dct_matrix, mel_filterbank

EPS32 = float(np.finfo(np.float32).eps)
LOG_OFFSET = 1e-6
ALIGN_PAD = 16  # (n_fft - win_length) // 2
KEYWORD_CLIPS = ("yes", "no", "up", "stop", "marvin")


def reference(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mel power, log-mel, MFCC), each (40, T), in float64 with librosa and scipy."""
    y = np.pad(audio.astype(np.float64), ALIGN_PAD)
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=16000,
        n_fft=512,
        win_length=480,
        hop_length=160,
        center=False,
        window="hann",
        power=2.0,
        n_mels=40,
        fmin=20,
        fmax=4000,
        htk=True,
        norm=None,
    )
    log_mel = np.log(mel + LOG_OFFSET)
    mfcc = scipy.fft.dct(log_mel, type=2, norm="ortho", axis=0)[:40]
    return mel, log_mel, mfcc


def frontend(kind: str, audio: np.ndarray) -> np.ndarray:
    """Frontend output for a batch (B, S) as float64 (B, 40, T)."""
    with torch.no_grad():
        out = Frontend(FeatureConfig(kind=kind))(torch.from_numpy(audio.astype(np.float32)))
    return out.numpy().astype(np.float64)


def chirp(seconds: float = 1.0, f0: float = 100.0, f1: float = 4000.0) -> np.ndarray:
    t = np.arange(round(16000 * seconds)) / 16000
    rate = (f1 - f0) / seconds
    return (0.5 * np.sin(2 * np.pi * (f0 * t + rate / 2 * t**2))).astype(np.float32)


def compare(clips: np.ndarray, names: list[str]) -> dict[str, float]:
    """Assert frontend == reference for every clip; return the worst differences seen."""
    log_mel_out = frontend("logmel", clips)
    mfcc_out = frontend("mfcc", clips)
    worst = {"logmel_not_tiny": 0.0, "logmel_all": 0.0, "mfcc": 0.0, "eps_ratio": 0.0}
    for name, audio, log_mel, mfcc in zip(names, clips, log_mel_out, mfcc_out, strict=True):
        mel_ref, log_mel_ref, mfcc_ref = reference(audio)
        assert log_mel.shape == log_mel_ref.shape == (40, 98), name
        diff = np.abs(log_mel - log_mel_ref)
        frame_peak = mel_ref.max(axis=0, keepdims=True)
        not_tiny = mel_ref >= 1e-6 * frame_peak
        # (a) bins within 60 dB of the frame's loudest band: float32-exact up to 2e-4
        assert diff[not_tiny].max() < 2e-4, name
        # (b) everywhere: the error a float32 FFT can make, with a generous constant (64)
        eps_ratio = diff * (mel_ref + LOG_OFFSET) / (EPS32 * (frame_peak + LOG_OFFSET))
        assert eps_ratio.max() < 64, name
        # MFCC is an orthonormal DCT of the log-mel, so its error is bounded by the log-mel's
        mfcc_diff = np.abs(mfcc - mfcc_ref)
        assert mfcc_diff.max() < 2e-3, name
        # and the frontend's MFCC is exactly the DCT of its own log-mel
        own_dct = scipy.fft.dct(log_mel, type=2, norm="ortho", axis=0)[:40]
        np.testing.assert_allclose(mfcc, own_dct, atol=2e-4, err_msg=name)
        for key, value in (
            ("logmel_not_tiny", diff[not_tiny].max()),
            ("logmel_all", diff.max()),
            ("mfcc", mfcc_diff.max()),
            ("eps_ratio", eps_ratio.max()),
        ):
            worst[key] = max(worst[key], float(value))
    print("max differences vs librosa:", {k: f"{v:.2e}" for k, v in worst.items()})
    return worst


# --- configuration -----------------------------------------------------------------------------


def test_defaults_give_98_frames_of_40_channels() -> None:
    cfg = FeatureConfig()
    assert (cfg.kind, cfg.win_length, cfg.hop_length, cfg.n_fft) == ("mfcc", 480, 160, 512)
    assert (cfg.clip_samples, cfg.num_frames, cfg.num_channels) == (16000, 98, 40)
    for kind in ("mfcc", "logmel"):
        out = Frontend(FeatureConfig(kind=kind))(torch.zeros(3, 16000))
        assert out.shape == (3, 40, 98) and out.dtype == torch.float32


def test_num_frames_matches_frontend_for_other_settings() -> None:
    cfg = FeatureConfig(kind="logmel", clip_ms=1500, window_ms=25, hop_ms=12.5, n_mels=64)
    assert (cfg.win_length, cfg.hop_length, cfg.n_fft) == (400, 200, 512)
    out = Frontend(cfg)(torch.zeros(1, cfg.clip_samples))
    assert out.shape == (1, 64, cfg.num_frames) == (1, 64, 1 + (24000 - 400) // 200)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "spectrogram"},
        {"n_mfcc": 41},
        {"n_mels": 20, "n_mfcc": 40},
        {"f_min": 4000.0, "f_max": 4000.0},
        {"f_min": 5000.0},
        {"f_min": -1.0},
        {"f_max": 8001.0},
        {"sample_rate": 8000, "f_max": 4001.0},
        {"window_ms": 0.0},
        {"hop_ms": 0.0},
        {"hop_ms": -10.0},
        {"clip_ms": 20.0},
    ],
)
def test_invalid_config_raises(kwargs) -> None:
    with pytest.raises(KwspotError):
        FeatureConfig(**kwargs)


def test_logmel_may_have_fewer_mels_than_mfcc_default() -> None:
    # n_mfcc only constrains MFCC: a 20-band log-mel is fine
    assert FeatureConfig(kind="logmel", n_mels=20).num_channels == 20


# --- building blocks against librosa / scipy ---------------------------------------------------


def test_mel_filterbank_matches_librosa_htk() -> None:
    ours = mel_filterbank(FeatureConfig())
    theirs = librosa.filters.mel(
        sr=16000, n_fft=512, n_mels=40, fmin=20, fmax=4000, htk=True, norm=None
    )
    assert ours.shape == (257, 40)
    np.testing.assert_allclose(ours, theirs.T, atol=1e-6)


def test_dct_matrix_is_scipy_orthonormal_dct2() -> None:
    x = np.random.default_rng(0).standard_normal((5, 40))
    np.testing.assert_allclose(
        x @ dct_matrix(40, 13), scipy.fft.dct(x, type=2, norm="ortho", axis=1)[:, :13], atol=1e-5
    )
    basis = dct_matrix(40, 40).astype(np.float64)
    np.testing.assert_allclose(basis.T @ basis, np.eye(40), atol=1e-6)


REFERENCE = FeatureConfig(n_mels=64, f_min=80.0, f_max=7600.0, mel_filters="mel",
                          dct_norm="tf")  # the TC-ResNet authors' training front end


def tf_linear_to_mel_weight_matrix(num_mel_bins: int, num_spectrogram_bins: int,
                                   sample_rate: float, lower_hz: float,
                                   upper_hz: float) -> np.ndarray:
    """An independent port of tf.signal.linear_to_mel_weight_matrix (TensorFlow's documented
    algorithm: HTK mel 1127 ln(1 + f/700), bins from 0 to Nyquist with the DC bin dropped and
    zero-padded back, triangles whose slopes are taken on the mel scale)."""
    nyquist = sample_rate / 2.0
    linear_hz = np.linspace(0.0, nyquist, num_spectrogram_bins)[1:]
    spec_mel = 1127.0 * np.log1p(linear_hz / 700.0)
    edges = np.linspace(1127.0 * np.log1p(lower_hz / 700.0),
                        1127.0 * np.log1p(upper_hz / 700.0), num_mel_bins + 2)
    out = np.zeros((num_spectrogram_bins, num_mel_bins))
    for m in range(num_mel_bins):
        lower, centre, upper = edges[m], edges[m + 1], edges[m + 2]
        for i, mel in enumerate(spec_mel):
            lower_slope = (mel - lower) / (centre - lower)
            upper_slope = (upper - mel) / (upper - centre)
            out[i + 1, m] = max(0.0, min(lower_slope, upper_slope))
    return out


def test_reference_mel_filters_match_tensorflows_algorithm() -> None:
    ours = mel_filterbank(REFERENCE)
    theirs = tf_linear_to_mel_weight_matrix(64, 257, 16000, 80.0, 7600.0)
    assert ours.shape == (257, 64) and not ours[0].any()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    # and kwspot's default (Hz-domain triangles) is measurably not that
    default = mel_filterbank(FeatureConfig(n_mels=64, f_min=80.0, f_max=7600.0))
    assert np.abs(default - theirs).max() > 1e-3  # small (0.0045) but not rounding


def test_reference_dct_is_tensorflows_mfcc_scaling() -> None:
    # tf.signal.mfccs_from_log_mel_spectrograms: unnormalised DCT-II * rsqrt(2 N)
    x = np.random.default_rng(0).standard_normal((5, 64))
    theirs = scipy.fft.dct(x, type=2, norm=None, axis=1)[:, :40] / np.sqrt(2 * 64)
    np.testing.assert_allclose(x @ dct_matrix(64, 40, "tf"), theirs, atol=1e-5)
    ortho = x @ dct_matrix(64, 40)
    np.testing.assert_allclose(ortho[:, 1:], theirs[:, 1:], atol=1e-5)  # only c0 differs
    np.testing.assert_allclose(ortho[:, 0] * np.sqrt(2), theirs[:, 0], atol=1e-5)


# --- whole frontend against the reference ------------------------------------------------------


def test_frontend_matches_librosa_on_chirp() -> None:
    worst = compare(chirp()[None], ["chirp"])
    assert worst["logmel_not_tiny"] < 2e-4


def test_frontend_matches_librosa_on_noise_and_tones() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(16000) / 16000
    clips = np.stack(
        [
            0.1 * rng.standard_normal(16000),
            0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(16000),
            np.where(t < 0.5, 0.0, 0.2 * np.sin(2 * np.pi * 2500 * t)),  # silence, then a tone
        ]
    ).astype(np.float32)
    compare(clips, ["white", "440 Hz", "half silent"])


@pytest.fixture(scope="module")
def real_clips(shared_dataset) -> tuple[np.ndarray, list[str]]:
    root: Path = shared_dataset("speech_commands_lite")
    paths = [sorted((root / word).glob("*.wav"))[0] for word in KEYWORD_CLIPS]
    clips = np.stack([fit_length(load_audio(p), 16000) for p in paths])
    return clips, [f"{p.parent.name}/{p.name}" for p in paths]


def test_frontend_matches_librosa_on_real_clips(real_clips) -> None:
    clips, names = real_clips
    assert clips.shape == (len(KEYWORD_CLIPS), 16000) and np.abs(clips).max() > 0.01
    compare(clips, names)


def test_batch_rows_equal_single_clips_real(real_clips) -> None:
    clips, _ = real_clips
    for kind in ("mfcc", "logmel"):
        batch = frontend(kind, clips)
        for i, clip in enumerate(clips):
            np.testing.assert_allclose(batch[i], frontend(kind, clip[None])[0], atol=1e-5)


def test_batch_rows_equal_single_clips_synthetic() -> None:
    rng = np.random.default_rng(2)
    clips = np.stack([chirp(), 0.2 * rng.standard_normal(16000), np.zeros(16000)])
    clips = clips.astype(np.float32)
    for kind in ("mfcc", "logmel"):
        batch = frontend(kind, clips)
        assert batch.shape == (3, 40, 98)
        for i in range(len(clips)):
            np.testing.assert_allclose(batch[i], frontend(kind, clips[i : i + 1])[0], atol=1e-5)
        # different inputs give different rows (the batch is not collapsed or broadcast)
        assert np.abs(batch[0] - batch[1]).max() > 1.0
    # all-zero input: every mel band is log(1e-6); MFCC c0 = sqrt(40) * log(1e-6), rest 0
    zero_logmel = frontend("logmel", clips)[2]
    np.testing.assert_allclose(zero_logmel, np.log(LOG_OFFSET), atol=1e-5)
    zero_mfcc = frontend("mfcc", clips)[2]
    np.testing.assert_allclose(zero_mfcc[0], np.sqrt(40) * np.log(LOG_OFFSET), rtol=1e-5)
    np.testing.assert_allclose(zero_mfcc[1:], 0.0, atol=1e-4)


@pytest.mark.parametrize("cfg", [
    FeatureConfig(),                                                        # TC-ResNet: 40 MFCC
    FeatureConfig(kind="logmel"),                                           # BC-ResNet style
    FeatureConfig(window_ms=40, hop_ms=20, n_mfcc=10),                      # DS-CNN: n_fft 1024
    FeatureConfig(window_ms=25, hop_ms=10, n_mels=80, n_mfcc=13, f_max=8000),
    FeatureConfig(clip_ms=1500, hop_ms=12.5),
    REFERENCE,                                                              # TC-ResNet authors'
], ids=["tc-resnet", "logmel", "ds-cnn", "80-mel", "hop-200", "reference"])
@pytest.mark.parametrize("level", [0.5, 1e-4, 0.0])
@pytest.mark.parametrize("exported", ["matmul", "conv"])
def test_exported_frontends_equal_the_training_frontend(cfg: FeatureConfig, level: float,
                                                        exported: str) -> None:
    """The exported front ends (the two-stage FFT as matrix products for TFLite, as one
    depthwise convolution and a matrix product for ONNX Runtime) are the training one."""
    from kwspot.features import ConvFrontend, MatmulFrontend

    if exported == "conv" and not ConvFrontend.supports(cfg):
        with pytest.raises(KwspotError, match="multiple of 32 samples"):
            ConvFrontend(cfg)
        return
    audio = np.random.default_rng(1).uniform(-level, level, (3, cfg.clip_samples))
    audio = torch.from_numpy(audio.astype(np.float32))
    expected = Frontend(cfg)(audio)
    got = (MatmulFrontend if exported == "matmul" else ConvFrontend)(cfg)(audio)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() < 1e-4


def test_exported_audio_graph_has_no_dft_and_gives_logits(tmp_path) -> None:
    import onnx
    import onnxruntime as ort

    from kwspot.classifier import KeywordClassifier, audio_in_graph
    from kwspot.export import export_module
    from kwspot.runtime.model import softmax

    model = KeywordClassifier("tc-resnet8", ["yes", "no", "_silence_"], FeatureConfig()).eval()
    audio = torch.from_numpy(np.random.default_rng(0).uniform(-0.3, 0.3, (2, 16000))
                             .astype(np.float32))
    path = tmp_path / "m.onnx"
    export_module(audio_in_graph(model).eval(), audio, path, "audio", ["posteriors", "logits"])
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert not ops & {"DFT", "STFT"}, ops
    from kwspot.export.quantize import _frontend_nodes
    from kwspot.features import ConvFrontend, MatmulFrontend

    # ONNX gets the one-convolution FFT, TFLite the matmul one
    assert isinstance(audio_in_graph(model).classifier[0], ConvFrontend)
    assert isinstance(audio_in_graph(model, runtime="tflite").classifier[0], MatmulFrontend)
    # int8 leaves the front end float: its Conv is excluded, the network's convs are not
    graph = onnx.load(str(path)).graph
    excluded = set(_frontend_nodes(onnx.load(str(path))))
    convs = [n.name for n in graph.node if n.op_type == "Conv"]
    assert convs[0] in excluded and not set(convs[1:]) & excluded
    assert any(n.op_type == "Log" and n.name in excluded for n in graph.node)
    posteriors, logits = ort.InferenceSession(str(path)).run(None, {"audio": audio.numpy()})
    with torch.no_grad():
        expected = model(audio).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    np.testing.assert_allclose(posteriors, softmax(expected), atol=1e-5)

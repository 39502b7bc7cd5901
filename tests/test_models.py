"""TC-ResNet shapes and sizes against the paper, and the waveform augmentations."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from kwspot.errors import KwspotError
from kwspot.experiments.table import PAPER
from kwspot.models import MODELS, build_model
from kwspot.profile import count_flops, count_parameters
from kwspot.training.augment import (
    AugmentConfig,
    NoiseBank,
    augment_batch,
    fill_silence,
    mix_background,
    time_shift,
)

# The published counts (Choi et al. 2019 Tables 1-2, Kim et al. 2021) live in one place, the
# table that `kwspot table` prints them in; each model is checked on its own recipe's input.
PUBLISHED = {name: (paper[3], paper[2]) for name, paper in PAPER.items()}  # (params, FLOPs)
TC_RESNETS = ("tc-resnet8", "tc-resnet8-1.5", "tc-resnet14", "tc-resnet14-1.5")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- models --------------------------------------------------------------------------------------


def test_model_table_is_the_paper_set() -> None:
    from kwspot.training.recipes import RECIPES

    assert set(MODELS) == set(PUBLISHED) | {"tc-resnet8-causal", "tc-resnet14-causal"}
    assert set(RECIPES) == set(MODELS)  # every model has its published recipe


def recipe_input(name: str) -> tuple[int, int]:
    from kwspot.training.recipes import recipe_for

    features = recipe_for(name).features
    return features.num_channels, features.num_frames


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_params_and_flops_match_the_published_counts(name: str) -> None:
    """Within 5 % (Res15's published FLOPs count TensorFlow's space-to-batch padding of
    dilated convs, docs/results.md; its convolutions themselves are 4.6 % fewer)."""
    params, flops = PUBLISHED[name]
    shape = recipe_input(name)
    model = build_model(name, shape[0], 12, frames=shape[1])
    assert count_parameters(model) == pytest.approx(params, rel=0.05)
    if flops is not None:
        assert count_flops(model, shape) == pytest.approx(flops, rel=0.05)
    assert model.training  # count_flops restores the mode it found


@pytest.mark.parametrize("name", sorted(MODELS))
def test_output_shape_and_independent_rows(name: str) -> None:
    channels, frames = recipe_input(name)
    torch.manual_seed(0)
    model = build_model(name, channels, 12, frames=frames)
    x = torch.randn(3, channels, frames)
    model.train()
    assert model(x).shape == (3, 12)
    model.eval()
    with torch.no_grad():
        logits = model(x)
        assert logits.shape == (3, 12) and torch.isfinite(logits).all()
        # rows are independent in eval mode: one example alone gives its row of the batch
        torch.testing.assert_close(model(x[1:2])[0], logits[1], atol=1e-4, rtol=1e-4)
        assert not torch.allclose(logits[0], logits[1])


def test_reference_tc_resnet8_differs_only_where_the_authors_code_does() -> None:
    ours, ref = build_model("tc-resnet8", 40, 12), build_model("tc-resnet8-ref", 40, 12)
    assert ours.classifier.bias is not None and ref.classifier.bias is None
    assert [type(m) for m in ref.stem] == [torch.nn.Conv1d, torch.nn.BatchNorm1d,
                                           torch.nn.ReLU]
    # 16 BN scales and shifts more, 12 classifier biases fewer
    assert count_parameters(ref) == count_parameters(ours) + 2 * 16 - 12 == 65_168


def test_bc_resnet_parameter_counts_are_exact() -> None:
    # the official implementation's counts for tau = 1, 3, 8
    for tau, count in ((1, 9232), (3, 54168), (8, 321068)):
        assert count_parameters(build_model(f"bc-resnet-{tau}", 40, 12)) == count
    # frequency halves in stages 1 and 2 (40 -> 20 -> 20 -> 10 -> 5 -> 5): parameters do not
    # show where, multiply-adds do (a stride in stages 2 and 3 gave 5.84M here)
    model = build_model("bc-resnet-1", 40, 12).eval()
    sizes = []
    hooks = [b.register_forward_hook(lambda _m, _i, out: sizes.append(out.shape[2]))
             for b in model.blocks]
    with torch.no_grad():
        model(torch.zeros(1, 40, 98))
    for h in hooks:
        h.remove()
    assert sizes == [20, 20, 10, 10, 5, 5, 5, 5, 5, 5, 5, 5]
    assert count_flops(model, (40, 98)) == 4_816_880


def test_spec_augment_masks_bands_and_spans_reproducibly() -> None:
    from kwspot.training.augment import SpecAugmentConfig, spec_augment

    x = torch.ones(64, 40, 98)
    cfg = SpecAugmentConfig(freq_masks=2, freq_width=7, time_masks=2, time_width=20)
    a = spec_augment(x, cfg, torch.Generator().manual_seed(1))
    b = spec_augment(x, cfg, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}
    zero_rows = (a == 0).all(dim=2).sum(dim=1)  # channels masked over every frame
    zero_cols = (a == 0).all(dim=1).sum(dim=1)  # frames masked over every channel
    assert zero_rows.max() <= 14 and zero_cols.max() <= 40 and zero_rows.sum() > 0
    assert zero_cols.sum() > 0
    off = SpecAugmentConfig()
    assert spec_augment(x, off, torch.Generator()) is x


def test_wider_and_deeper_models_are_bigger() -> None:
    params = {n: count_parameters(build_model(n, 40, 12)) for n in TC_RESNETS}
    assert params["tc-resnet8"] < params["tc-resnet14"] < params["tc-resnet14-1.5"]
    assert params["tc-resnet8"] < params["tc-resnet8-1.5"]


def test_count_parameters_skips_frozen() -> None:
    model = build_model("tc-resnet8", 40, 12)
    total = count_parameters(model)
    model.classifier.weight.requires_grad_(False)
    assert count_parameters(model) == total - model.classifier.weight.numel()


def test_other_channel_and_class_counts_and_dropout() -> None:
    model = build_model("tc-resnet14", 64, 5, dropout=0.2)
    assert model.dropout.p == 0.2
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 64, 120)).shape == (2, 5)


def test_unknown_model_names_the_choices() -> None:
    with pytest.raises(KwspotError) as info:
        build_model("tc-resnet9", 40, 12)
    message = str(info.value)
    assert "tc-resnet9" in message
    for name in PAPER:
        assert name in message


# --- time shift ----------------------------------------------------------------------------------


def drawn_shifts(generator: torch.Generator, rows: int, max_shift: int) -> torch.Tensor:
    """The draw time_shift makes, replayed from a copy of the generator's state."""
    replay = torch.Generator().set_state(generator.get_state())
    return torch.randint(-max_shift, max_shift + 1, (rows, 1), generator=replay)[:, 0]


def test_time_shift_moves_content_by_the_drawn_amount() -> None:
    rows, length, max_shift = 200, 50, 7
    batch = (torch.arange(length, dtype=torch.float32) + 1).repeat(rows, 1)
    batch = batch * (torch.arange(rows)[:, None] + 1)  # each row its own values
    gen = torch.Generator().manual_seed(1234)
    expected = drawn_shifts(gen, rows, max_shift)
    out = time_shift(batch, max_shift, gen)
    assert out.shape == batch.shape and out.dtype == batch.dtype
    assert set(expected.tolist()) == set(range(-max_shift, max_shift + 1))
    for i in range(rows):
        s = int(expected[i])
        want = torch.zeros(length)
        if s >= 0:
            want[s:] = batch[i, : length - s]  # positive shift: later, zeros in front
        else:
            want[:s] = batch[i, -s:]  # negative shift: earlier, zeros at the end
        torch.testing.assert_close(out[i], want, rtol=0, atol=0)


def test_time_shift_is_reproducible_and_zero_shift_is_identity() -> None:
    batch = torch.randn(8, 100)
    a = time_shift(batch, 10, torch.Generator().manual_seed(5))
    b = time_shift(batch, 10, torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert time_shift(batch, 0, torch.Generator()) is batch


# --- background noise ----------------------------------------------------------------------------


def test_mix_background_prob_zero_leaves_speech_but_fills_silence() -> None:
    gen = torch.Generator().manual_seed(0)
    bank = NoiseBank.synthetic(seconds=2.0)
    rows = 64
    batch = torch.rand(rows, 1600, generator=gen) * 0.5 - 0.25
    is_silence = torch.arange(rows) % 4 == 0
    batch[is_silence] = 0.0
    cfg = AugmentConfig(background_prob=0.0)
    out = mix_background(batch, is_silence, bank, cfg, gen)
    torch.testing.assert_close(out[~is_silence], batch[~is_silence], rtol=0, atol=0)
    assert (out[is_silence].abs().amax(dim=1) > 0).all()
    assert out.abs().max() <= 1.0


def test_mix_background_always_noises_silence_at_any_prob() -> None:
    bank = NoiseBank.synthetic(seconds=2.0)
    for prob in (0.0, 0.5, 1.0):
        gen = torch.Generator().manual_seed(int(prob * 10))
        batch = torch.zeros(200, 800)
        out = mix_background(
            batch, torch.ones(200, dtype=torch.bool), bank, AugmentConfig(background_prob=prob), gen
        )
        assert (out.abs().amax(dim=1) > 0).all(), prob


def test_mix_background_probability_and_volume() -> None:
    """Constant noise of 0.5: each row gains exactly volume * 0.5, volume ~ U[0, 0.1] w.p. 0.3."""
    gen = torch.Generator().manual_seed(3)
    bank = NoiseBank([np.full(5000, 0.5), np.full(700, 0.5)])
    rows = 2000
    batch = torch.zeros(rows, 400)
    cfg = AugmentConfig(background_prob=0.3, background_volume=0.1)
    out = mix_background(batch, torch.zeros(rows, dtype=torch.bool), bank, cfg, gen)
    added = out[:, 0] / 0.5  # the volume drawn for each row
    torch.testing.assert_close(out, added[:, None].expand_as(out) * 0.5)
    noisy = added > 0
    assert noisy.float().mean().item() == pytest.approx(0.3, abs=0.04)
    assert added.max().item() <= 0.1
    assert added[noisy].mean().item() == pytest.approx(0.05, abs=0.01)


def test_augment_batch_keeps_shape() -> None:
    gen = torch.Generator().manual_seed(0)
    batch = torch.randn(5, 16000) * 0.1
    out = augment_batch(
        batch,
        torch.zeros(5, dtype=torch.bool),
        NoiseBank.synthetic(seconds=2),
        AugmentConfig(),
        16000,
        gen,
    )
    assert out.shape == batch.shape and out.dtype == torch.float32
    assert not torch.equal(out, batch)


# --- noise bank ----------------------------------------------------------------------------------


def tagged_recordings(lengths: list[int]) -> list[np.ndarray]:
    """Recording k holds k * 100000 + its own sample index, so a value names its origin."""
    return [k * 100_000 + np.arange(n, dtype=np.float64) for k, n in enumerate(lengths)]


def test_noise_segments_stay_inside_one_recording() -> None:
    lengths = [3000, 1200, 7000, 2500]
    bank = NoiseBank(tagged_recordings(lengths))
    gen = torch.Generator().manual_seed(0)
    seg_len = 1000
    segments = bank.sample(600, seg_len, gen).double().numpy()
    assert segments.shape == (600, seg_len)
    source = segments // 100_000
    index = segments % 100_000
    assert (source == source[:, :1]).all()  # one recording per segment
    assert set(source[:, 0].astype(int)) == set(range(len(lengths)))  # all get used
    for k, n in enumerate(lengths):
        seg_index = index[source[:, 0] == k]
        assert (seg_index[:, -1] < n).all()
        # contiguous samples, no wrap: the segment fits inside the recording
        assert (np.diff(seg_index, axis=1) == 1).all()
        assert len(np.unique(seg_index[:, 0])) > 10  # start offsets vary


def test_noise_shorter_than_segment_is_tiled_within_itself() -> None:
    bank = NoiseBank(tagged_recordings([300, 50]))
    segments = bank.sample(100, 1000, torch.Generator().manual_seed(1)).double().numpy()
    source = segments // 100_000
    index = segments % 100_000
    assert (source == source[:, :1]).all()
    for k, n in enumerate((300, 50)):
        seg_index = index[source[:, 0] == k]
        assert len(seg_index) > 0
        assert (seg_index < n).all()
        assert (np.diff(seg_index, axis=1) % n == 1).all()  # consecutive modulo length


def test_noise_bank_needs_a_recording_and_reads_files(tmp_path) -> None:
    with pytest.raises(ValueError):
        NoiseBank([])
    paths = []
    for name, n in (("a.wav", 16000), ("b.wav", 8000)):
        path = tmp_path / name
        sf.write(str(path), np.full(n, 0.25 if name == "a.wav" else 0.5), 16000, subtype="FLOAT")
        paths.append(str(path))
    segments = NoiseBank.from_files(paths).sample(200, 12000, torch.Generator().manual_seed(0))
    assert segments.shape == (200, 12000)
    # a.wav holds 0.25, b.wav 0.5 (tiled, being shorter): each row is one of them, both occur
    row_values = {tuple(torch.unique(row).tolist()) for row in segments}
    assert row_values == {(0.25,), (0.5,)}


def test_fill_silence_replaces_only_silence_rows_reproducibly() -> None:
    bank = NoiseBank.synthetic(seconds=2.0)
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, (6, 800)).astype(np.float32)
    is_silence = np.array([False, True, False, True, True, False])
    a = fill_silence(audio, is_silence, bank, volume=1.0, seed=7)
    b = fill_silence(audio, is_silence, bank, volume=1.0, seed=7)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[~is_silence], audio[~is_silence])
    assert not np.array_equal(a[is_silence], audio[is_silence])
    assert np.abs(a).max() <= 1.0
    assert fill_silence(audio, np.zeros(6, bool), bank, 1.0, 0) is audio


def test_noise_bank_rms_normalisation_equalises_recordings() -> None:
    import numpy as np

    from kwspot.training.augment import NoiseBank

    rng = np.random.default_rng(0)
    quiet, loud = rng.standard_normal(20000) * 0.003, rng.standard_normal(30000) * 0.3
    bank = NoiseBank([quiet, loud], rms=0.1)
    for recording in bank.recordings:
        assert float(recording.pow(2).mean().sqrt()) == pytest.approx(0.1, rel=1e-4)
    raw = NoiseBank([quiet, loud])  # the paper's recipe: as recorded
    assert float(raw.recordings[0].pow(2).mean().sqrt()) == pytest.approx(0.003, rel=0.05)

"""Causal TC-ResNet and its streaming form: streamed outputs equal the full-window reference."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kwspot.errors import KwspotError
from kwspot.models import build_model
from kwspot.models.streaming import ChunkStep, StreamingTCResNet, StreamState
from kwspot.models.tc_resnet import TCResNet, TCResNetConfig
from kwspot.profile import count_parameters

CAUSAL = ("tc-resnet8-causal", "tc-resnet14-causal")
WINDOW = 98
STRIDE = 8


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_model(name: str, seed: int = 0, bn_shift: bool = True) -> TCResNet:
    """Random weights and BN statistics (so BN is not the identity), eval mode."""
    torch.manual_seed(seed)
    model = build_model(name, 40, 12)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.running_mean.normal_(0.0, 0.3 if bn_shift else 0.0)
                m.bias.normal_(0.0, 0.3 if bn_shift else 0.0)
    assert isinstance(model, TCResNet)
    return model.eval()


def stream(
    streamer: StreamingTCResNet, x: torch.Tensor, chunks: list[int]
) -> tuple[torch.Tensor, StreamState]:
    """Feed x (B, C, T) in the given chunk sizes, cycling them; all outputs (B, n, classes)."""
    state, outputs, start, i = streamer.init_state(x.shape[0]), [], 0, 0
    while start < x.shape[-1]:
        size = chunks[i % len(chunks)]
        logits, state = streamer(x[..., start : start + size], state)
        outputs.append(logits)
        start, i = start + size, i + 1
    return torch.cat(outputs, dim=1), state


def reference(model: TCResNet, x: torch.Tensor) -> torch.Tensor:
    """Output j: the full-window model on all frames up to frame 8j, history from frame 0."""
    ends = range(1, x.shape[-1] + 1, STRIDE)
    return torch.stack([model.window_logits(x[..., :end], WINDOW) for end in ends], dim=1)


@torch.no_grad()
@pytest.mark.parametrize("name", CAUSAL)
def test_causal_clip_is_the_window_with_no_history(name: str) -> None:
    model = random_model(name)
    clip = torch.randn(3, 40, WINDOW)
    assert model.blocks(model.stem(clip)).shape[-1] == 13  # 98 -> 49 -> 25 -> 13
    torch.testing.assert_close(model.window_logits(clip, WINDOW), model(clip), rtol=0, atol=1e-6)


@torch.no_grad()
def test_zero_frames_are_zero_history_only_without_bn_shifts() -> None:
    """No history means zero conv padding at every layer; zero feature frames give that only
    when BN maps 0 to 0, since BN shifts make deeper activations of silence non-zero."""
    clip, silence = torch.randn(1, 40, WINDOW), torch.zeros(1, 40, 10 * STRIDE)
    with_silence = torch.cat([silence, clip], dim=-1)
    model = random_model("tc-resnet8-causal", bn_shift=False)
    torch.testing.assert_close(
        model.window_logits(with_silence, WINDOW), model(clip), rtol=0, atol=1e-6
    )
    model = random_model("tc-resnet8-causal")
    assert not torch.allclose(model.window_logits(with_silence, WINDOW), model(clip), atol=1e-3)


@torch.no_grad()
def test_causal_stack_sees_171_past_frames_and_no_future() -> None:
    model = random_model("tc-resnet8-causal")
    x = torch.randn(1, 40, 400)
    base = model.blocks(model.stem(x))
    j = 40  # last-layer position j reads frames 8j - 170 .. 8j
    for frame, changes in ((8 * j - 171, False), (8 * j - 170, True), (8 * j, True)):
        moved = x.clone()
        moved[..., frame] += 1.0
        out = model.blocks(model.stem(moved))
        assert (not torch.equal(out[..., j], base[..., j])) == changes, frame
    moved = x.clone()
    moved[..., 8 * j + 1 :] = 0.0  # the future does not reach position j
    torch.testing.assert_close(model.blocks(model.stem(moved))[..., : j + 1], base[..., : j + 1])


@torch.no_grad()
@pytest.mark.parametrize("name", CAUSAL)
def test_stream_equals_full_window_for_any_chunking(name: str) -> None:
    model = random_model(name)
    streamer = StreamingTCResNet(model, WINDOW)
    x = torch.randn(1, 40, 403)
    want = reference(model, x)
    assert want.shape == (1, 51, 12)
    outputs = {}
    for chunks in ([1], [3], [7], [8], [13], [50], [403], [0, 5, 1, 0, 17, 2, 64]):
        got, state = stream(streamer, x, chunks)
        assert state.frames == 403
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5, msg=f"chunks {chunks}")
        outputs[tuple(chunks)] = got
    whole = outputs[(403,)]
    for chunks, got in outputs.items():
        torch.testing.assert_close(got, whole, rtol=0, atol=1e-6, msg=f"chunks {chunks}")
    # from the 13th output on, each is a full 98-frame window: a clip starting at 8(j - 12)
    j = 30
    clip = x[..., STRIDE * (j - 12) : STRIDE * (j - 12) + WINDOW]
    assert not torch.allclose(whole[:, j], model(clip), atol=1e-3)  # real history matters


@torch.no_grad()
def test_first_window_from_reset_is_the_training_clip() -> None:
    model = random_model("tc-resnet8-causal")
    streamer = StreamingTCResNet(model, WINDOW)
    x = torch.randn(2, 40, WINDOW)
    got, _ = stream(streamer, x, [5])
    assert got.shape == (2, 13, 12)
    torch.testing.assert_close(got[:, -1], model(x), rtol=0, atol=1e-5)
    for j in range(13):  # before a full window: the clip so far, zero history
        torch.testing.assert_close(got[:, j], model(x[..., : STRIDE * j + 1]), rtol=0, atol=1e-5)


@torch.no_grad()
def test_interleaved_streams_keep_separate_states() -> None:
    model = random_model("tc-resnet14-causal")
    streamer = StreamingTCResNet(model, WINDOW)
    a, b = torch.randn(1, 40, 200), torch.randn(1, 40, 200)
    alone_a, _ = stream(streamer, a, [7])
    alone_b, _ = stream(streamer, b, [11])
    state_a, state_b = streamer.init_state(1), streamer.init_state(1)
    out_a, out_b = [], []
    for start in range(0, 200, 10):
        logits, state_a = streamer(a[..., start : start + 10], state_a)
        out_a.append(logits)
        logits, state_b = streamer(b[..., start : start + 10], state_b)
        out_b.append(logits)
    torch.testing.assert_close(torch.cat(out_a, dim=1), alone_a, rtol=0, atol=1e-6)
    torch.testing.assert_close(torch.cat(out_b, dim=1), alone_b, rtol=0, atol=1e-6)
    # a state is a value: feeding the same state twice gives the same answer
    once, _ = streamer(a[..., :9], state_a)
    twice, _ = streamer(a[..., :9], state_a)
    assert torch.equal(once, twice)


@torch.no_grad()
def test_empty_chunk_emits_nothing() -> None:
    streamer = StreamingTCResNet(random_model("tc-resnet8-causal"), WINDOW)
    state = streamer.init_state(2)
    logits, after = streamer(torch.zeros(2, 40, 0), state)
    assert logits.shape == (2, 0, 12) and after.frames == 0


@pytest.mark.parametrize(("causal", "plain"), [("tc-resnet8-causal", "tc-resnet8"),
                                               ("tc-resnet14-causal", "tc-resnet14")])
def test_causal_models_have_the_same_parameters(causal: str, plain: str) -> None:
    a, b = build_model(causal, 40, 12), build_model(plain, 40, 12)
    assert count_parameters(a) == count_parameters(b)
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]
    assert a.train()(torch.randn(2, 40, WINDOW)).shape == (2, 12)


def test_same_padding_is_refused() -> None:
    model = build_model("tc-resnet8", 40, 12)
    with pytest.raises(KwspotError, match="causal"):
        StreamingTCResNet(model)
    with pytest.raises(KwspotError, match="causal"):
        model.window_logits(torch.randn(1, 40, WINDOW), WINDOW)
    with pytest.raises(KwspotError, match="time_padding"):
        TCResNetConfig(time_padding="valid")
    with pytest.raises(KwspotError, match="inference only"):
        StreamingTCResNet(build_model("tc-resnet8-causal", 40, 12)).train()


@torch.no_grad()
@pytest.mark.parametrize("name", CAUSAL)
def test_the_export_step_equals_the_stream_from_its_first_full_window(name: str) -> None:
    """``ChunkStep`` (the ONNX form: newest-first, calls ending on output frames, a fixed
    window divisor) gives the reference's outputs once the pool is full, for any such calls."""
    model = random_model(name)
    streamer = StreamingTCResNet(model, WINDOW)
    step = ChunkStep(streamer).eval()
    x = torch.randn(2, 40, 8 * 60 + 1)
    want = reference(model, x)
    for calls in ([8 * 14 + 1, 8, 8 * 3, 8 * 42], [1, 8 * 60], [8 * 60 + 1]):
        init = streamer.init_state(2)
        state, got, start = [*init.contexts, init.pool], [], 0
        for size in calls:
            posteriors, logits, *state = step(x[..., start : start + size], *state)
            torch.testing.assert_close(posteriors, logits.softmax(-1))
            got.append(logits)
            start += size
        got_all = torch.cat(got, dim=1)
        assert got_all.shape == want.shape
        torch.testing.assert_close(got_all[:, 12:], want[:, 12:], rtol=0, atol=1e-5,
                                   msg=f"calls {calls}")

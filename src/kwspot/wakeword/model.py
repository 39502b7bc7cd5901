"""A wake-word detector on the frozen speech embedding: 16 embeddings (1.98 s of audio, one per
80 ms) -> a small temporal-convolution head (TC-ResNet style: 1-D convolutions over time with
the 96 embedding dimensions as channels) -> two logits, ``[_unknown_, phrase]``.

The embedding is frozen, so training runs on precomputed embeddings (``head`` alone); export
and evaluation run the whole ``WakewordClassifier`` on raw audio.
"""

from __future__ import annotations

import torch
from torch import nn

from kwspot.data import UNKNOWN
from kwspot.runtime.embedding_frontend import EmbeddingFeatures
from kwspot.wakeword.embedding import (
    EMBED_DIM,
    EMBED_HOP,
    EMBED_SAMPLES,
    SAMPLE_RATE,
    SpeechEmbedding,
    samples_for,
)

EMBEDDINGS = 16  # per window: the openWakeWord window, ~2 s, long enough for a short phrase
WINDOW_SAMPLES = samples_for(EMBEDDINGS)  # 31,712
# what the streaming front end of an export computes (the card's "embedding" entry)
FEATURES = EmbeddingFeatures(SAMPLE_RATE, EMBED_SAMPLES, EMBED_HOP, EMBEDDINGS, EMBED_DIM)


class _Block(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm1d(channels), nn.ReLU(),
            nn.Conv1d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm1d(channels))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class TemporalHead(nn.Module):
    """(B, 96, T) embeddings (channels first, as kwspot's networks take features) -> (B, 2)
    logits. Pooling is mean and max over time: a phrase anywhere in the window counts."""

    def __init__(self, channels: int = 64, dropout: float = 0.3, classes: int = 2) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(EMBED_DIM, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm1d(channels), nn.ReLU())
        self.blocks = nn.Sequential(_Block(channels, 1), _Block(channels, 2))
        self.dropout = nn.Dropout(dropout)
        self.classify = nn.Linear(2 * channels, classes)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(embeddings))
        pooled = torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1)
        return self.classify(self.dropout(pooled))


class AveragedHeads(nn.Module):
    """Several heads on the same embeddings as one: their posteriors averaged. It returns
    the log of that average, so a softmax of its output (what every kwspot runtime applies
    to logits) gives the average exactly. Heads differing only in their seed disagree most
    on the rare confident false alarms that decide a low false-alarm budget; the embedding
    is computed once, so each head adds little CPU."""

    def __init__(self, heads: list[nn.Module]) -> None:
        super().__init__()
        self.heads = nn.ModuleList(heads)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        mean = torch.stack([torch.softmax(h(embeddings), dim=1) for h in self.heads]).mean(0)
        return torch.log(mean.clamp_min(1e-30))


class WakewordClassifier(nn.Module):
    """(B, 31,712) audio in [-1, 1] -> (B, len(labels)) logits; ``labels`` defaults to
    [_unknown_, phrase] (a keyword classifier on the embedding gives its own, e.g. the 12
    Speech Commands classes)."""

    def __init__(self, phrase: str, head: nn.Module | None = None,
                 labels: list[str] | None = None) -> None:
        super().__init__()
        self.phrase = phrase
        self.labels = list(labels) if labels else [UNKNOWN, phrase]
        self.embedding = SpeechEmbedding()
        self.head = head if head is not None else TemporalHead()

    def embeddings(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, 96, E): the head's input."""
        return EmbedWindows(self.embedding)(audio)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.head(self.embeddings(audio))


class EmbedWindows(nn.Module):
    """(N, 31,712) windows -> (N, 96, 16): the head's input for whole windows, the mel
    computed once per window (training embeds thousands of windows this way)."""

    def __init__(self, embedding: SpeechEmbedding) -> None:
        super().__init__()
        self.embedding = embedding

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.embedding(audio).transpose(1, 2)


class EmbedOne(nn.Module):
    """The streaming front end's graph: (N, 12,512) audio -> (N, 96), one embedding each."""

    def __init__(self, embedding: SpeechEmbedding) -> None:
        super().__init__()
        self.embedding = embedding

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.embedding(audio)[:, 0]

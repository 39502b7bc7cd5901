"""Front end + network as one module: raw 16 kHz audio in, logits out. Training, evaluation,
export and the runtime all go through this, so the features can never drift apart."""

from __future__ import annotations

import torch
from torch import nn

from kwspot.features import FeatureConfig, Frontend
from kwspot.models import build_model


class KeywordClassifier(nn.Module):
    def __init__(
        self, model_name: str, labels: list[str], features: FeatureConfig, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.model_name = model_name
        self.labels = list(labels)
        self.features = features
        self.frontend = Frontend(features)
        self.network = build_model(model_name, features.num_channels, len(labels), dropout,
                                   features.num_frames)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, S) audio -> (B, num_classes) logits."""
        return self.network(self.frontend(audio))


class PosteriorModel(nn.Module):
    """Audio -> softmax posteriors, for any audio -> logits module (a KeywordClassifier, a
    wake-word classifier)."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(audio), dim=-1)


class PosteriorsAndLogits(nn.Module):
    """Any audio -> logits module with the two outputs every export has: posteriors and
    logits (calibration and fusion need logits; inverting a softmax loses them)."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.classifier(audio)
        return torch.softmax(logits, dim=-1), logits


def audio_in_graph(classifier: KeywordClassifier, runtime: str = "onnx") -> PosteriorsAndLogits:
    """The exported audio-in graph: a front end written for ``runtime`` (both equal the
    training front end within 1e-4), the network, posteriors and logits. ONNX Runtime gets
    the one-convolution FFT (:class:`ConvFrontend`) where the hop allows it, and the network
    rewritten for its 2-D kernels (``models.layout``); TFLite, and other hops, the matmul FFT
    (:class:`MatmulFrontend`), which TFLite runs as fast and whose module type the int8
    converter keeps float."""
    from kwspot.features import ConvFrontend, MatmulFrontend
    from kwspot.models.layout import for_onnx

    if runtime not in ("onnx", "tflite"):
        raise ValueError(f"unknown runtime {runtime!r}")
    features = classifier.features
    if runtime == "onnx":  # and its temporal convolutions as (1 x k) 2-D ones
        frontend = ConvFrontend(features) if ConvFrontend.supports(features) \
            else MatmulFrontend(features)
        return PosteriorsAndLogits(nn.Sequential(frontend, for_onnx(classifier.network)))
    return PosteriorsAndLogits(nn.Sequential(MatmulFrontend(features), classifier.network))

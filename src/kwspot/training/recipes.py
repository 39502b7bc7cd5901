"""Named recipes: each model of the comparison with its published input features and training
recipe, so ``kwspot train --model ds-cnn-s`` picks both and a table compares like with like.

Lengths are in epochs and become steps for the data at hand (``steps_for``): the published
recipes ran for a fixed number of steps on ~22k-50k training clips, which on a small set
would be hundreds of epochs for some models and a handful for others. Learning-rate drops
sit at the same fractions of the run as in the source. Sources:

- TC-ResNet and its 2-D ablations: Choi et al. 2019 and hyperconnect/TC-ResNet's scripts
  (SGD momentum 0.9, lr 0.1/0.01/0.001 at 1/3 and 2/3, weight decay 1e-3, batch 100,
  dropout 0.5; 40 MFCCs, 30 ms windows every 10 ms).
- Res8/Res15 (Tang & Lin 2018): SGD momentum 0.9, lr 0.1/0.01/0.001 at 1/3 and 2/3, weight
  decay 1e-5, batch 64; 40 MFCCs over 30/10 ms.
- DS-CNN (Zhang et al. 2017, ARM ML-KWS-for-MCU): Adam, lr 5e-4/1e-4/2e-5 in thirds, batch
  100, no weight decay; 10 MFCCs over 40 ms windows every 20 ms.
- CNN-1/CNN-2 (Sainath & Parada 2015, as trained in hyperconnect/TC-ResNet's scripts): Adam,
  batch 100, dropout 0.5; CNN-1 lr 5e-4/1e-4 at 1/2, CNN-2 5e-4/1e-4/2e-5 in thirds; 40 MFCCs
  over 40/20 ms.
- BC-ResNet (Kim et al. 2021): SGD momentum 0.9, lr 0.1 with 5 warm-up epochs then cosine
  to zero, weight decay 1e-3, batch 100, dropout 0.1, SpecAugment (2 frequency masks of up
  to 5 (tau=3) or 7 (tau=8) bins, 2 time masks of up to 20 frames; none for tau=1); 40
  log-mel bins over 30/10 ms, 0-8 kHz.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from kwspot.datasets import DataConfig
from kwspot.errors import KwspotError
from kwspot.features import FeatureConfig
from kwspot.training.augment import AugmentConfig, SpecAugmentConfig
from kwspot.training.config import OptimConfig, TrainConfig


@dataclass(frozen=True)
class Recipe:
    features: FeatureConfig
    optim: OptimConfig  # steps and boundaries are placeholders scaled by ``steps_for``
    epochs: float
    dropout: float = 0.5
    spec_augment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    warmup_epochs: float = 0.0
    source: str = ""

    def steps_for(self, train_clips: int) -> int:
        return max(1, math.ceil(self.epochs * train_clips / self.optim.batch_size))


MFCC_40 = FeatureConfig()  # 40 MFCCs, 30 ms every 10 ms: TC-ResNet, Res
MFCC_40_LONG = FeatureConfig(window_ms=40.0, hop_ms=20.0)  # CNN-1/CNN-2
MFCC_10_LONG = FeatureConfig(n_mfcc=10, window_ms=40.0, hop_ms=20.0)  # DS-CNN
LOGMEL_40 = FeatureConfig(kind="logmel", f_min=0.0, f_max=8000.0)  # BC-ResNet
# the TC-ResNet authors' training front end: 64 mel filters (mel-domain triangles) over
# 80-7600 Hz, TensorFlow's DCT scaling, the first 40 coefficients
MFCC_40_REFERENCE = FeatureConfig(n_mels=64, f_min=80.0, f_max=7600.0, mel_filters="mel",
                                  dct_norm="tf")


def _piecewise(values: tuple[float, ...], fractions: tuple[float, ...], batch: int,
               weight_decay: float, optimizer: str = "sgd") -> OptimConfig:
    steps = 30_000  # placeholder resolution; scaled to the real step count
    return OptimConfig(steps=steps, batch_size=batch, lr_values=values,
                       lr_boundaries=tuple(round(f * steps) for f in fractions),
                       weight_decay=weight_decay, optimizer=optimizer)


TC_RESNET = Recipe(MFCC_40, _piecewise((0.1, 0.01, 0.001), (1 / 3, 2 / 3), 100, 1e-3),
                   epochs=200, source="Choi et al. 2019")
TC_RESNET_REFERENCE = dataclasses.replace(TC_RESNET, features=MFCC_40_REFERENCE,
                                          source="hyperconnect/TC-ResNet")
RES = Recipe(MFCC_40, _piecewise((0.1, 0.01, 0.001), (1 / 3, 2 / 3), 64, 1e-5),
             epochs=100, dropout=0.0, source="Tang & Lin 2018")
# honk's 30 epochs are ~1,250 steps on the lite set, where Res8-narrow stopped at 51 % still
# learning; 100 epochs converge it (docs/results.md). Res8 and Res15 are shorter only because
# one run must fit 2.5 h on one CPU core (Res8 ~2.9 s a step, Res15 ~6.2 s): the budget, not
# the source, sets them; give a GPU run ``--epochs res15=100``.
RES8 = dataclasses.replace(RES, epochs=60)
RES15 = dataclasses.replace(RES, epochs=30)
DS_CNN = Recipe(MFCC_10_LONG, _piecewise((5e-4, 1e-4, 2e-5), (1 / 3, 2 / 3), 100, 0.0, "adam"),
                epochs=100, dropout=0.0, source="Zhang et al. 2017")
CNN_1 = Recipe(MFCC_40_LONG, _piecewise((5e-4, 1e-4), (1 / 2,), 100, 0.0, "adam"),
               epochs=100, source="Sainath & Parada 2015")
CNN_2 = Recipe(MFCC_40_LONG, _piecewise((5e-4, 1e-4, 2e-5), (1 / 3, 2 / 3), 100, 0.0, "adam"),
               epochs=100, source="Sainath & Parada 2015")


def _bc_resnet(freq_width: int) -> Recipe:
    masks = SpecAugmentConfig(2, freq_width, 2, 20) if freq_width else SpecAugmentConfig()
    optim = OptimConfig(steps=30_000, batch_size=100, lr_values=(0.1,), lr_boundaries=(),
                        weight_decay=1e-3, schedule="cosine")
    return Recipe(LOGMEL_40, optim, epochs=100, dropout=0.1, spec_augment=masks,
                  warmup_epochs=5, source="Kim et al. 2021")


RECIPES: dict[str, Recipe] = {
    "tc-resnet8-ref": TC_RESNET_REFERENCE,
    **{name: TC_RESNET for name in ("tc-resnet8", "tc-resnet8-1.5", "tc-resnet14",
                                     "tc-resnet14-1.5", "tc-resnet8-causal",
                                     "tc-resnet14-causal", "tc-resnet8-2d",
                                     "tc-resnet8-2d-pool")},
    "res8-narrow": RES,
    "res15-narrow": RES,
    "res8": RES8,
    "res15": RES15,
    **{name: DS_CNN for name in ("ds-cnn-s", "ds-cnn-m", "ds-cnn-l")},
    "cnn-trad-fpool3": CNN_1,
    "cnn-one-fstride4": CNN_2,
    "bc-resnet-1": _bc_resnet(0),
    "bc-resnet-3": _bc_resnet(5),
    "bc-resnet-8": _bc_resnet(7),
}


def eval_interval(train_clips: int, batch_size: int) -> int:
    """Validate every 5 epochs (of whole batches: ceil(clips / batch) steps an epoch)."""
    return 5 * max(1, math.ceil(train_clips / batch_size))


def recipe_for(model: str) -> Recipe:
    try:
        return RECIPES[model]
    except KeyError:
        raise KwspotError(f"no recipe for model {model!r}; recipes: "
                          f"{', '.join(sorted(RECIPES))}") from None


def recipe_config(model: str, data: DataConfig, train_clips: int, seed: int = 0,
                  epochs: float | None = None, eval_every: int | None = None,
                  threads: int = 0, device: str = "cpu") -> TrainConfig:
    """The model's recipe as a full training config for ``train_clips`` training examples
    (``epochs`` overrides the recipe's length; the schedule keeps its shape)."""
    recipe = recipe_for(model)
    if epochs is not None:
        if not epochs > 0:
            raise KwspotError(f"--epochs must be positive, got {epochs}")
        recipe = dataclasses.replace(recipe, epochs=epochs)
    steps = recipe.steps_for(train_clips)
    optim = recipe.optim.scaled_to(steps)
    if recipe.warmup_epochs:
        warmup = math.ceil(recipe.warmup_epochs * train_clips / optim.batch_size)
        optim = dataclasses.replace(optim, warmup_steps=min(warmup, steps - 1))
    return TrainConfig(
        data=data, model=model, dropout=recipe.dropout, features=recipe.features,
        augment=AugmentConfig(), optim=optim,
        eval_every=eval_every or eval_interval(train_clips, optim.batch_size),
        seed=seed, threads=threads, device=device, spec_augment=recipe.spec_augment,
    )

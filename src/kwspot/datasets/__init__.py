"""Dataset readers: each turns a layout on disk into ``Utterance`` rows (see kwspot.data).

``open_dataset`` picks the reader from the path (Speech Commands lists, a CSV manifest, or a
label folder) and applies the keyword recipe when keywords are given.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from kwspot.data import (
    SILENCE,
    SPEECH_COMMANDS_KEYWORDS,
    UNKNOWN,
    Dataset,
    Utterance,
    apply_keyword_recipe,
    read_manifest,
)
from kwspot.datasets.folder import audio_files_under, scan_folder
from kwspot.datasets.manifest import read_csv_manifest
from kwspot.datasets.speech_commands import (
    background_noise_files,
    is_speech_commands,
    scan_speech_commands,
)
from kwspot.errors import KwspotError


@dataclass(frozen=True)
class DataConfig:
    """Where the data is and how to label it.

    ``keywords=None`` means: Speech Commands -> the standard 10 words; other data -> every
    label is a class (no silence/unknown added). ``keywords=()`` forces "every label".
    """

    path: str
    keywords: tuple[str, ...] | None = None
    silence_fraction: float = 0.1
    unknown_fraction: float = 0.1
    label_regex: str | None = None
    validation_pct: float = 10.0
    test_pct: float = 10.0
    noise_dir: str | None = None
    seed: int = 0
    # the training split's share of _unknown_ (None: as unknown_fraction; inf: every clip)
    train_unknown_fraction: float | None = None
    # folders of extra non-keyword audio (e.g. `kwspot negatives`, `kwspot mine`): every file
    # becomes a training _unknown_ clip
    negatives: tuple[str, ...] = ()


def open_dataset(cfg: DataConfig) -> Dataset:
    """The dataset ``cfg`` names, with the recipe applied and its checksum set.

    Prepared data (``kwspot prepare``, or a run directory) is read as it was fixed; its
    recipe options cannot be changed here.
    """
    from kwspot.datasets.prepare import data_root, dataset_checksum, is_prepared, load_prepared

    root = Path(cfg.path)
    if not root.exists():
        raise KwspotError(f"{root}: dataset not found")
    prepared = root if root.is_dir() else root.parent
    if (root.is_dir() or root.suffix.lower() == ".jsonl") and is_prepared(prepared):
        dataset = load_prepared(prepared)
        if cfg.keywords and tuple(cfg.keywords) != tuple(
                k for k in dataset.labels if k not in (SILENCE, UNKNOWN)):
            raise KwspotError(f"{prepared} is prepared data with labels {dataset.labels}; "
                              "prepare again for other keywords")
        defaults = DataConfig(path=cfg.path)
        changed = [f.name for f in dataclasses.fields(cfg)
                   if f.name not in ("path", "keywords", "seed", "label_regex", "validation_pct",
                                     "test_pct")
                   and getattr(cfg, f.name) != getattr(defaults, f.name)]
        if changed:
            raise KwspotError(f"{prepared} is prepared data: its recipe is fixed, so "
                              f"{', '.join('--' + c.replace('_', '-') for c in changed)} would "
                              "be ignored; prepare again from the original data with them")
        return dataset
    dataset = _open_raw(cfg, root)
    dataset.root = str(data_root(root))
    dataset.silence_seed = cfg.seed
    dataset.checksum = dataset_checksum(dataset)
    return dataset


def _open_raw(cfg: DataConfig, root: Path) -> Dataset:
    from kwspot.datasets.silence import resolve_silence

    noise: list[str] = []
    if root.is_file() and root.suffix.lower() == ".csv":
        rows = read_csv_manifest(root, cfg.validation_pct, cfg.test_pct)
        keywords = cfg.keywords
    elif root.is_file() and root.suffix.lower() == ".jsonl":
        # kwspot's own manifest (a run's manifest.jsonl): splits and labels are already final
        rows = read_manifest(root)
        present = {u.label for u in rows}
        labels = [x for x in (SILENCE, UNKNOWN) if x in present]
        labels += sorted(present - {SILENCE, UNKNOWN})
        noise = sorted(str(p) for p in Path(cfg.noise_dir).glob("*.wav")) if cfg.noise_dir \
            else []
        if not noise and any(u.path is None for u in rows):
            raise KwspotError(f"{root}: this manifest's _silence_ rows are cut from noise "
                              "files, which a bare manifest does not list: give --noise-dir "
                              "DIR, or --data the prepared folder or run directory it came "
                              "from")
        return Dataset(rows, labels, noise)
    elif root.is_dir() and is_speech_commands(root):
        rows = scan_speech_commands(root)
        noise = background_noise_files(root)
        keywords = SPEECH_COMMANDS_KEYWORDS if cfg.keywords is None else cfg.keywords
    elif root.is_dir():
        rows = scan_folder(root, cfg.label_regex, cfg.validation_pct, cfg.test_pct)
        noise = background_noise_files(root)
        keywords = cfg.keywords
    else:
        raise KwspotError(f"{root}: expected a dataset folder, a .csv or a .jsonl manifest")
    if cfg.noise_dir:
        noise = sorted(str(p) for p in Path(cfg.noise_dir).glob("*.wav"))
        if not noise:
            raise KwspotError(f"{cfg.noise_dir}: no .wav noise files")
    if keywords:
        rows, labels = apply_keyword_recipe(
            rows, keywords, cfg.silence_fraction, cfg.unknown_fraction, cfg.seed,
            cfg.train_unknown_fraction,
        )
    else:
        labels = sorted({u.label for u in rows})
    if cfg.negatives:
        if UNKNOWN not in labels:
            raise KwspotError("--negatives needs an _unknown_ class (give --keywords)")
        rows = rows + negative_rows(cfg.negatives)
    return Dataset(resolve_silence(rows, noise, cfg.seed), labels, noise)


def default_eval_split(cfg: DataConfig) -> str:
    """What ``--split auto`` scores: the test split of data that defines splits (official
    lists, a CSV, prepared data or a run, a flat folder split by speaker), and every clip of
    a plain label folder (typically a prepared test set, such as Google's)."""
    from kwspot.datasets.prepare import is_prepared

    root = Path(cfg.path)
    if root.is_dir() and not is_prepared(root) and not is_speech_commands(root) \
            and not cfg.label_regex:
        return "all"
    return "test"


def negative_rows(folders: tuple[str, ...]) -> list[Utterance]:
    """Every audio file under the folders, as a training ``_unknown_`` clip."""
    return [Utterance(str(p), UNKNOWN, "train", f"negatives:{p.parent.name}")
            for folder in folders for p in audio_files_under(folder, "--negatives")]

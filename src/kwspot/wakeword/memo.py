"""A memo of stream embeddings, so that several heads on the same frozen embedding score (or
mine) the same hours of audio with each 80 ms embedding computed once.

The embedding is computed per 12,512-sample patch (its mel clamp too), so a remembered result
is exactly what the session would return: scoring through the memo gives the same figures as
``kwspot eval-stream``, only faster the second time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from kwspot.fileio import atomic_path


class CachedEmbeddings:
    """Wraps an embedding session (``run`` / ``get_inputs``) with a dict keyed by a hash of
    each patch's samples."""

    def __init__(self, session: Any, store: dict[bytes, np.ndarray]) -> None:
        self.session = session
        self.store = store
        self.name = session.get_inputs()[0].name

    def get_inputs(self) -> Any:
        return self.session.get_inputs()

    def run(self, outputs: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        x = feeds[self.name]
        keys = [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in x]
        missing = [i for i, k in enumerate(keys) if k not in self.store]
        if missing:
            fresh = self.session.run(None, {self.name: x[missing]})[0]
            for i, row in zip(missing, fresh, strict=True):
                self.store[keys[i]] = row
        return [np.stack([self.store[k] for k in keys])]


def embedding_digest(path: str | Path) -> str:
    """A hash of an embedding graph's content, its external weights read in: the graph file
    names its ``.weights`` file, so hashing the bytes would give every export its own memo
    even where the embedding is the same."""
    import onnx

    return hashlib.sha256(onnx.load(str(path)).SerializeToString()).hexdigest()[:12]


def store_for(model_path: str | Path, folder: str | Path) -> Path:
    """The memo file for an export's embedding graph: its content hash is in the name, so a
    changed embedding never reads another's results and the same one, exported under any
    name, shares them."""
    from kwspot.wakeword.export import embedding_path

    return Path(folder) / f"stream-embeddings-{embedding_digest(embedding_path(model_path))}.npz"


def load_store(path: str | Path) -> dict[bytes, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        return {}
    z = np.load(path)
    return {bytes(k): v for k, v in zip(z["keys"], z["values"], strict=True)}


def save_store(store: dict[bytes, np.ndarray], path: str | Path) -> None:
    if not store:
        return
    keys = np.array([np.frombuffer(k, np.uint8) for k in store])
    # a file object: np.savez would add ".npz" to a bare path
    with atomic_path(Path(path)) as partial, open(partial, "wb") as f:
        np.savez(f, keys=keys, values=np.stack(list(store.values())))


def memoized_model(model_path: str | Path, store: dict[bytes, np.ndarray]) -> Any:
    """The exported embedding model (``load_keyword_model``) with its embedding session
    behind ``store``."""
    from kwspot.runtime.model import load_keyword_model

    model = load_keyword_model(model_path)
    if getattr(model, "embedding_session", None) is None:
        from kwspot.errors import KwspotError

        raise KwspotError(f"{model_path}: not a model on the speech embedding")
    model.embedding_session = CachedEmbeddings(model.embedding_session, store)
    return model

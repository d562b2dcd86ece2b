"""Embedding, indexing and hybrid search of policy measures."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Settings
    from .hybrid import HybridRetriever


def open_retriever(settings: Settings, embedder=None) -> HybridRetriever:
    """Load the index named in settings and wrap it in a retriever (checks the embedder matches)."""
    from ..corpus.gazetteer import LibraryPlaces, load_gazetteer
    from .embedders import get_embedder
    from .hybrid import Glossary, HybridRetriever
    from .store import load_index

    embedder = embedder or get_embedder(settings.embedder)
    data = load_index(settings.index_dir, embedder.id)
    places = LibraryPlaces.of(data.documents.values(), load_gazetteer(settings.seeds_dir))
    return HybridRetriever(data, embedder, Glossary.load(settings.seeds_dir), places=places, rrf_k=settings.rrf_k,
                           candidates=settings.candidates, district_boost=settings.district_boost)

"""One object the CLI, the API and the UI share: the library's measures and labels, loaded once."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ..config import Settings
from ..types import Document, Measure
from .labels import LabelSet, load_labels
from .match import HealthCheck, health_check
from .profile import Profile, from_sentence, is_self_description
from .vocabulary import Vocabulary, load_vocabulary


@dataclass(frozen=True)
class Library:
    documents: dict[str, Document]
    measures: dict[str, Measure]
    labels: LabelSet
    vocabulary: Vocabulary


class Matcher:
    """Health checks over one library. `check(profile)` never calls a model: labels are precomputed."""

    def __init__(self, settings: Settings, documents: dict[str, Document] | None = None,
                 measures: dict[str, Measure] | None = None, manifest: dict | None = None):
        self.settings = settings
        self._given = (documents, measures, manifest)
        self._library: Library | None = None
        self._lock = threading.Lock()

    @property
    def library(self) -> Library:
        with self._lock:
            if self._library is None:
                documents, measures, manifest = self._given
                if documents is None or measures is None:
                    from ..retrieval.store import load_index

                    data = load_index(Path(self.settings.index_dir))
                    documents, measures, manifest = data.documents, data.measures, data.manifest
                labels = load_labels(Path(self.settings.index_dir), Path(self.settings.seeds_dir), documents,
                                     measures, manifest or {})
                self._library = Library(documents, measures, labels, load_vocabulary(Path(self.settings.seeds_dir)))
            return self._library

    def today(self) -> date:
        return self.settings.effective_today()

    def check(self, profile: Profile) -> HealthCheck:
        lib = self.library
        return health_check(profile, lib.documents, lib.measures, lib.labels, lib.vocabulary, self.today())

    def profile_from_sentence(self, text: str) -> Profile | None:
        """A profile drawn from a self-description ("we are a 30-person AI start-up in Xuhui…"), else None."""
        if not is_self_description(text):
            return None
        return from_sentence(text, self.library.vocabulary, self.today())

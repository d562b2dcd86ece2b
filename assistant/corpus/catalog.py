"""The seed catalog: what a policy text does not state about itself (ids, short titles, district)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import CorpusError

CATALOG_FILE = "catalog.json"
_DOC_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")


@dataclass(frozen=True)
class CatalogEntry:
    doc_id: str
    district: str
    short_title_en: str
    short_title_zh: str
    title: str | None = None
    issuer: str | None = None


def load_catalog(seeds_dir: Path) -> dict[str, CatalogEntry]:
    """Map of source file name -> entry. Every field is checked so a typo fails at build time."""
    path = seeds_dir / CATALOG_FILE
    if not path.exists():
        raise CorpusError(f"{path} is missing: every policy document needs an entry there (doc_id, district, short titles)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        docs = data["documents"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CorpusError(f"{path} is not a valid catalog ({exc}); see the _about field for its shape") from exc
    out: dict[str, CatalogEntry] = {}
    seen: set[str] = set()
    for name, fields in docs.items():
        try:
            entry = CatalogEntry(**fields)
        except TypeError as exc:
            raise CorpusError(f"{path}: entry for {name}: {exc}") from exc
        if not _DOC_ID.match(entry.doc_id):
            raise CorpusError(f"{path}: doc_id {entry.doc_id!r} must be lower-case letters, digits and '-'")
        if entry.doc_id in seen:
            raise CorpusError(f"{path}: doc_id {entry.doc_id!r} is used twice")
        seen.add(entry.doc_id)
        out[name] = entry
    return out

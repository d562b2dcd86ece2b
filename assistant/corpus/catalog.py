"""The catalog: optional overrides for what a policy text does not state well about itself.

Everything else is parsed from the text; a document with no entry gets a derived id, its district from
its issuer and its title as its short titles. `jxa docs add` writes an entry to pin the id it assigned.
"""

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
    doc_id: str | None = None
    district: str | None = None
    short_title_en: str | None = None
    short_title_zh: str | None = None
    title: str | None = None
    issuer: str | None = None
    supersedes: str | None = None
    original: str | None = None  # the file it was added from, under the library folder


def read_catalog_json(seeds_dir: Path) -> dict:
    """The catalog file as JSON ({"documents": {}} when there is none)."""
    path = seeds_dir / CATALOG_FILE
    if not path.exists():
        return {"documents": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data.get("documents"), dict):
            raise KeyError("documents")
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise CorpusError(f"{path} is not a valid catalog ({exc}); see the _about field for its shape") from exc
    return data


def load_catalog(seeds_dir: Path) -> dict[str, CatalogEntry]:
    """Map of source file name -> entry (empty without a catalog). Every field is checked so a typo
    fails at build time."""
    path = seeds_dir / CATALOG_FILE
    docs = read_catalog_json(seeds_dir)["documents"]
    out: dict[str, CatalogEntry] = {}
    seen: set[str] = set()
    for name, fields in docs.items():
        try:
            entry = CatalogEntry(**fields)
        except TypeError as exc:
            raise CorpusError(f"{path}: entry for {name}: {exc}") from exc
        if entry.doc_id is not None:
            if not _DOC_ID.match(entry.doc_id):
                raise CorpusError(f"{path}: doc_id {entry.doc_id!r} must be lower-case letters, digits and '-'")
            if entry.doc_id in seen:
                raise CorpusError(f"{path}: doc_id {entry.doc_id!r} is used twice")
            seen.add(entry.doc_id)
        out[name] = entry
    return out


def valid_doc_id(doc_id: str) -> bool:
    return bool(_DOC_ID.match(doc_id))

"""An evaluation suite with a library of its own: the seed library plus the suite's documents.

A suite folder `eval/<suite>/` holds the documents as staff would upload them (text, DOCX, HTML, PDF)
and a `catalog.json` listing them in the order they are added:

    {"documents": [{"file": "lakeside-2023.txt", "doc_id": "lakeside-2023"},
                   {"file": "lakeside-2026.txt", "doc_id": "lakeside-2026", "supersedes": "lakeside-2023"}]}

The library is built in the cache folder under a key of everything that decides it (the seed library,
the suite's files, the embedder, and the source of the ingestion code) by copying the seed library and
its index and adding each document with `assistant.library.ingest` — what `jxa docs add` runs — so only
the new documents' measures are embedded. The main library and index are never touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..config import Settings
from ..errors import ConfigError
from ..retrieval.embedders import Embedder

SUITES_DIR = Path("eval")
SUITE_CATALOG = "catalog.json"
ANSWER_CACHE = "answer-cache.jsonl"
_PACKAGE = Path(__file__).resolve().parent.parent
# The code that turns files into an index: a change to any of it builds the suite's library again.
_INGESTION_CODE = ("corpus", "library", "retrieval", "matching")
_ENTRY_FIELDS = ("file", "doc_id", "district", "title", "supersedes")


@dataclass(frozen=True)
class SuiteDocument:
    file: Path
    doc_id: str | None = None
    district: str | None = None
    title: str | None = None
    supersedes: str | None = None


@dataclass(frozen=True)
class SuiteLibrary:
    """A built suite library: where its seeds and index are, and what adding each document reported."""

    suite: str
    seeds_dir: Path
    index_dir: Path
    answer_cache: Path  # the suite's own reply cache, beside its documents
    added: tuple[dict, ...]  # per document: doc_id, file, measures, embedded, warnings
    built_now: bool


def suite_folder(suite: str, root: Path = SUITES_DIR) -> Path | None:
    """The suite's folder when the suite has a library of its own, else None (it runs on the main one)."""
    folder = root / suite
    return folder if (folder / SUITE_CATALOG).is_file() else None


def own_library_suites(root: Path = SUITES_DIR) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{SUITE_CATALOG}"))


def suite_documents(folder: Path) -> list[SuiteDocument]:
    path = folder / SUITE_CATALOG
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))["documents"]
        docs = []
        for entry in raw:
            unknown = set(entry) - set(_ENTRY_FIELDS)
            if unknown or "file" not in entry:
                raise ValueError(f"entry {entry}: fields are {', '.join(_ENTRY_FIELDS)} ('file' required)")
            docs.append(SuiteDocument(**{**entry, "file": folder / entry["file"]}))
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path} is not a valid suite catalog ({exc})") from exc
    if missing := [d.file.name for d in docs if not d.file.is_file()]:
        raise ConfigError(f"{path}: listed but not in {folder}: {', '.join(missing)}")
    return docs


def _files(folder: Path) -> Iterator[Path]:
    return (p for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith("."))


def library_key(settings: Settings, embedder_id: str, folder: Path) -> str:
    """Hash of everything that decides the suite's library."""
    h = hashlib.sha256(f"suite-library|1|{embedder_id}|{settings.hnsw}".encode())
    parts = [("seeds", settings.seeds_dir), ("suite", folder)]
    parts += [(f"code/{name}", _PACKAGE / name) for name in _INGESTION_CODE]
    for label, root in parts:
        for path in _files(root):
            if label.startswith("code/") and path.suffix not in (".py", ".json"):
                continue
            if label == "suite" and path.name == ANSWER_CACHE:
                continue  # replies do not shape the library
            h.update(f"{label}/{path.relative_to(root)}".encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def build_suite_library(suite: str, settings: Settings, embedder: Embedder, *, root: Path = SUITES_DIR,
                        progress=None) -> SuiteLibrary:
    """The suite's library, built now or found in the cache folder (keyed by content hashes)."""
    from ..library.ingest import prepare, publish

    folder = suite_folder(suite, root)
    if folder is None:
        raise ConfigError(f"suite {suite!r} has no library of its own ({root / suite / SUITE_CATALOG} not found)")
    documents = suite_documents(folder)
    key = library_key(settings, embedder.id, folder)
    base = settings.cache_dir / "eval" / "libraries"
    final = base / f"{suite}-{key[:16]}"
    cache = folder / ANSWER_CACHE
    record = final / "suite.json"
    if record.is_file():
        added = tuple(json.loads(record.read_text(encoding="utf-8"))["added"])
        return SuiteLibrary(suite, final / "seeds", final / "index", cache, added, False)
    base.mkdir(parents=True, exist_ok=True)
    work = base / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        seeds, index = work / "seeds", work / "index"
        shutil.copytree(settings.seeds_dir, seeds, ignore=shutil.ignore_patterns(".*"))
        if settings.index_dir.is_dir():  # its vectors are reused: only the suite's measures are embedded
            shutil.copytree(settings.index_dir, index, ignore=shutil.ignore_patterns(".*"))
        added = []
        for d in documents:
            draft = prepare(d.file, seeds, doc_id=d.doc_id, district=d.district, title=d.title,
                            supersedes=d.supersedes)
            doc, report = publish(draft, seeds, index, embedder, hnsw=settings.hnsw, progress=progress)
            added.append({"doc_id": doc.doc_id, "file": d.file.name, "measures": len(draft.parsed.measures),
                          "embedded": report.embedded, "warnings": list(draft.warnings),
                          "proposed_supersedes": list(draft.proposed_supersedes)})
        (work / "suite.json").write_text(json.dumps({"suite": suite, "key": key, "added": added},
                                                    ensure_ascii=False, indent=1), encoding="utf-8")
        for old in base.glob(f"{suite}-" + "?" * 16):  # earlier builds of this suite are stale now
            shutil.rmtree(old, ignore_errors=True)
        os.replace(work, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return SuiteLibrary(suite, final / "seeds", final / "index", cache, tuple(added), True)

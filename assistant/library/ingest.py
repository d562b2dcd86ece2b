"""Adding and removing policy documents: a file becomes a library document, then the index follows.

Adding is a pipeline of stages over one `Draft`, each a function of the draft returning a new one:

    read (the file's text) -> parse (metadata and measures) -> screen (sentences addressed to an AI
    reader, left out) -> relate (the id is free; an earlier version it may supersede)

`prepare` runs them and returns the draft as a preview; `publish` writes the text and its catalog entry
into the library folder and rebuilds the index, which re-embeds only the new measures and swaps the new
index in atomically. A stage added later (labelling measures, bilingual names) slots into `STAGES`.
Whatever fails, the library and the index are left as they were.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from ..corpus.catalog import CATALOG_FILE, CatalogEntry, load_catalog, read_catalog_json, valid_doc_id
from ..corpus.clean import normalize_for_index
from ..corpus.parse import ParsedDocument, parse_document
from ..corpus.places import slug
from ..corpus.read import read_document
from ..errors import CorpusError
from ..retrieval.build import BuildReport, build_index, parse_seeds, seed_files, without_instructions
from ..retrieval.embedders import Embedder
from ..types import Document

ORIGINALS = "originals"  # the files documents were added from, kept beside their text
_LOCK = ".library.lock"


@dataclass(frozen=True)
class Draft:
    """A document on its way into the library, as each stage leaves it."""

    source: Path
    entry: CatalogEntry
    text: str = ""
    parsed: ParsedDocument | None = None
    quarantined: int = 0
    proposed_supersedes: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def document(self) -> Document:
        assert self.parsed is not None, "parse stage not run"
        return self.parsed.document

    @property
    def warnings(self) -> tuple[str, ...]:
        return (self.parsed.warnings if self.parsed else ()) + self.notes


def read_stage(draft: Draft, library: list[ParsedDocument]) -> Draft:
    return replace(draft, text=read_document(draft.source))


def parse_stage(draft: Draft, library: list[ParsedDocument]) -> Draft:
    return replace(draft, parsed=parse_document(draft.text, draft.source.name, draft.entry))


def screen_stage(draft: Draft, library: list[ParsedDocument]) -> Draft:
    screened, removed = without_instructions(draft.parsed)
    notes = (f"{removed} sentences addressed to an AI reader are left out of the index",) if removed else ()
    if not screened.measures:
        raise CorpusError(f"{draft.source.name}: every measure addresses an AI reader; nothing to add")
    return replace(draft, parsed=screened, quarantined=removed, notes=draft.notes + notes)


def relate_stage(draft: Draft, library: list[ParsedDocument]) -> Draft:
    if draft.entry.doc_id is None:  # a readable id: district and year, numbered when taken
        draft = replace(draft, entry=replace(draft.entry, doc_id=_free_id(draft.document, library)))
        draft = screen_stage(parse_stage(draft, library), library)
    doc = draft.document
    for other in library:
        if other.document.doc_id == doc.doc_id:
            raise CorpusError(f"{draft.source.name}: the id {doc.doc_id!r} is already used by "
                              f"{other.document.source_file} ({other.document.title}); choose another with --id")
        if other.document.sha256 == doc.sha256:
            raise CorpusError(f"{draft.source.name}: this text is already in the library as {other.document.doc_id}")
    if doc.supersedes and doc.supersedes not in {p.document.doc_id for p in library}:
        raise CorpusError(f"--supersedes {doc.supersedes}: no such document in the library (see `jxa docs list`)")
    proposed = tuple(p.document.doc_id for p in library if p.document.doc_id != doc.supersedes
                     and is_earlier_version(p.document, doc))
    return replace(draft, proposed_supersedes=proposed)


def _free_id(doc: Document, library: list[ParsedDocument]) -> str:
    taken = {p.document.doc_id for p in library}
    base = "-".join(x for x in (slug(doc.district) or "doc", str(doc.issued.year) if doc.issued else "") if x)
    candidates = [base] + [f"{base}-{n}" for n in range(2, 1000)]
    return next(c for c in candidates if c not in taken and valid_doc_id(c))


Stage = Callable[[Draft, list[ParsedDocument]], Draft]
STAGES: tuple[Stage, ...] = (read_stage, parse_stage, screen_stage, relate_stage)


def _title_key(title: str) -> str:
    """A title with its years and bracketed editions removed: what stays the same across versions."""
    key = normalize_for_index(title)
    key = re.sub(r"[(（\[][^)）\]]*[)）\]]", "", key)
    key = re.sub(r"\d{4}(?:\s*[-–—至]\s*\d{4})?\s*年?", "", key)
    return re.sub(r"[\s\W_]+", "", key)


def is_earlier_version(old: Document, new: Document) -> bool:
    """Same issuer and title (years and editions aside), and issued before: `new` likely replaces it."""
    return bool(old.issuer and old.issuer == new.issuer and _title_key(old.title) == _title_key(new.title)
                and old.issued and new.issued and old.issued < new.issued)


def library_file_name(text: str, existing: list[Path]) -> str:
    """'NNN_<hash>.txt': the next number in the folder, then the text's hash (as the seeds are named)."""
    numbers = [int(p.name[:3]) for p in existing if p.name[:3].isdigit()]
    return f"{max(numbers, default=-1) + 1:03d}_{hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]}.txt"


def _library(seeds_dir: Path) -> list[ParsedDocument]:
    if not seeds_dir.exists():  # a library folder not made yet: the first document creates it
        return []
    try:
        return parse_seeds(seeds_dir)
    except CorpusError as exc:
        if "no policy documents" in str(exc):
            return []
        raise


def prepare(source: Path, seeds_dir: Path, *, doc_id: str | None = None, district: str | None = None,
            title: str | None = None, supersedes: str | None = None) -> Draft:
    """Run every stage on a file and return the draft: what `publish` would add. Changes nothing."""
    if doc_id is not None and not valid_doc_id(doc_id):
        raise CorpusError(f"--id {doc_id!r}: use 2-64 lower-case letters, digits and '-'")
    draft = Draft(Path(source), CatalogEntry(doc_id=doc_id, district=district, title=title, supersedes=supersedes))
    library = _library(seeds_dir)
    for stage in STAGES:
        draft = stage(draft, library)
    return draft


@contextmanager
def _locked(seeds_dir: Path) -> Iterator[None]:
    """One change to a library at a time (two `jxa docs add` at once would both take one number)."""
    seeds_dir.mkdir(parents=True, exist_ok=True)
    with open(seeds_dir / _LOCK, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _catalog_with(seeds_dir: Path, name: str, fields: dict | None) -> bytes:
    data = read_catalog_json(seeds_dir)
    data.setdefault("_about", "Optional overrides of what a policy text states about itself: doc_id, district, "
                              "short titles, title, issuer, supersedes. Anything else is parsed from the text.")
    if fields is None:
        data["documents"].pop(name, None)
    else:
        data["documents"][name] = fields
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _rebuild(seeds_dir: Path, index_dir: Path, embedder: Embedder, hnsw: bool,
             progress: Callable[[int, int], None] | None, undo: Callable[[], None]) -> BuildReport:
    try:
        return build_index(seeds_dir, index_dir, embedder, hnsw=hnsw, progress=progress)
    except BaseException:
        undo()  # the library goes back to what the index (untouched: builds swap atomically) was built from
        raise


def publish(draft: Draft, seeds_dir: Path, index_dir: Path, embedder: Embedder, *, hnsw: bool = False,
            progress: Callable[[int, int], None] | None = None) -> tuple[Document, BuildReport]:
    """Add a prepared document to the library and rebuild the index; on any failure undo both."""
    with _locked(seeds_dir):
        library = _library(seeds_dir)
        relate_stage(draft, library)  # again, under the lock: the library may have changed since the preview
        existing = seed_files(seeds_dir) if library else []
        name = library_file_name(draft.text, existing)
        doc = replace(draft.document, source_file=name)
        fields = {"doc_id": doc.doc_id}
        for key in ("district", "title", "supersedes"):
            value = getattr(draft.entry, key)
            if value:
                fields[key] = value
        original = None
        if draft.source.suffix.lower() not in (".txt", ".text"):
            original = seeds_dir / ORIGINALS / (Path(name).stem + draft.source.suffix.lower())
            fields["original"] = f"{ORIGINALS}/{original.name}"
        catalog_path = seeds_dir / CATALOG_FILE
        old_catalog = catalog_path.read_bytes() if catalog_path.exists() else None
        new_catalog = _catalog_with(seeds_dir, name, fields)
        text_path = seeds_dir / name

        def undo() -> None:
            text_path.unlink(missing_ok=True)
            if original is not None:
                original.unlink(missing_ok=True)
            if old_catalog is None:
                catalog_path.unlink(missing_ok=True)
            else:
                _write_atomic(catalog_path, old_catalog)

        try:
            _write_atomic(text_path, draft.text.encode("utf-8"))
            if original is not None:
                original.parent.mkdir(exist_ok=True)
                shutil.copyfile(draft.source, original)
            _write_atomic(catalog_path, new_catalog)
        except BaseException:
            undo()
            raise
        report = _rebuild(seeds_dir, index_dir, embedder, hnsw, progress, undo)
        return doc, report


def find(seeds_dir: Path, doc_id: str) -> ParsedDocument:
    library = _library(seeds_dir)
    for p in library:
        if p.document.doc_id == doc_id:
            return p
    known = ", ".join(p.document.doc_id for p in library) or "none"
    raise CorpusError(f"no document {doc_id!r} in {seeds_dir} (documents: {known})")


def remove(doc_id: str, seeds_dir: Path, index_dir: Path, embedder: Embedder, *, hnsw: bool = False) -> BuildReport:
    """Take a document out of the library and rebuild the index without it; on failure undo both."""
    with _locked(seeds_dir):
        parsed = find(seeds_dir, doc_id)
        library = _library(seeds_dir)
        if len(library) == 1:
            raise CorpusError(f"{doc_id} is the only document: an index needs at least one; add another first")
        replacing = [p.document.doc_id for p in library if p.document.supersedes == doc_id]
        if replacing:
            raise CorpusError(f"{doc_id} is superseded by {', '.join(replacing)}, which name it: remove those first "
                              f"or keep it (old versions answer 'is this still valid?')")
        name = parsed.document.source_file
        text_path = seeds_dir / name
        catalog_path = seeds_dir / CATALOG_FILE
        old_text = text_path.read_bytes()
        old_catalog = catalog_path.read_bytes() if catalog_path.exists() else None
        entry = load_catalog(seeds_dir).get(name)
        original_rel = (read_catalog_json(seeds_dir)["documents"].get(name) or {}).get("original")
        original = seeds_dir / original_rel if original_rel else None
        aside = original.with_name(f".{original.name}.removed") if original and original.exists() else None

        def undo() -> None:
            _write_atomic(text_path, old_text)
            if old_catalog is not None:
                _write_atomic(catalog_path, old_catalog)
            if aside is not None and aside.exists():
                os.replace(aside, original)

        try:
            if entry is not None:
                _write_atomic(catalog_path, _catalog_with(seeds_dir, name, None))
            if aside is not None:
                os.replace(original, aside)
            text_path.unlink()
        except BaseException:
            undo()
            raise
        report = _rebuild(seeds_dir, index_dir, embedder, hnsw, None, undo)
        if aside is not None:
            aside.unlink(missing_ok=True)
        return report


def status(doc: Document, library: list[Document], today: date) -> str:
    """'in force', 'expired', 'not yet in force' or 'superseded by X'."""
    newer = [d.doc_id for d in library if d.supersedes == doc.doc_id]
    if newer:
        return f"superseded by {', '.join(newer)}"
    if doc.valid_until and doc.valid_until < today:
        return "expired"
    if doc.effective and doc.effective > today:
        return "not yet in force"
    return "in force"

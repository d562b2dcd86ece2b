"""The on-disk index: FAISS vectors, BM25 terms, measure metadata, and a manifest with hashes.

Layout of `index/`:
    manifest.json   format, embedder id, dimensions, input fingerprint, per-document and per-file sha256
    corpus.json     documents, measures and chunks (with their BM25 tokens), as plain JSON
    vectors.faiss   FAISS index (inner product on L2-normalised vectors), written by faiss.write_index
    vectors.npy     the same vectors as float32 (allow_pickle=False), reused by later builds

Nothing is pickled. A build writes into a temporary sibling folder and renames it into place, so a
build that dies at any point leaves the previous index whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import tempfile
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np

from ..errors import IndexLoadError
from ..types import Chunk, Document, Measure
from .tokenize import tokenize

log = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
CORPUS = "corpus.json"
FAISS_FILE = "vectors.faiss"
VECTORS = "vectors.npy"
DATA_FILES = (CORPUS, FAISS_FILE, VECTORS)
# Test hook: `JXA_TEST_KILL_AT=<stage>` makes a build SIGKILL itself at that stage, as an OOM kill
# or a power cut would, so `jxa hardening` can show the previous index survives each of them.
KILL_AT_ENV = "JXA_TEST_KILL_AT"
KILL_STAGES = ("embedded", "tmp-partial", "tmp-complete", "old-aside", "swapped")


def crash_point(stage: str) -> None:
    """Die here without cleanup when the kill hook names this stage (a no-op otherwise)."""
    if os.environ.get(KILL_AT_ENV) == stage:
        os.kill(os.getpid(), signal.SIGKILL)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_path(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


# Fields added to Document after format 1 was fixed: written only when set, so an index of documents
# that do not use them is byte for byte what it was.
_OPTIONAL_DOC_FIELDS = ("effective", "supersedes", "superseded_by")
_DOC_DATES = ("issued", "valid_until", "effective")


def doc_to_json(d: Document) -> dict:
    out = asdict(d)
    for name in _DOC_DATES:
        value = getattr(d, name)
        out[name] = value.isoformat() if value else None
    for name in _OPTIONAL_DOC_FIELDS:
        if out[name] is None:
            del out[name]
    return out


def doc_from_json(o: dict) -> Document:
    o = dict(o)
    for name in _DOC_DATES:
        o[name] = date.fromisoformat(o[name]) if o.get(name) else None
    return Document(**o)


def corpus_json(documents: list[Document], measures: list[Measure], chunks: list[Chunk]) -> str:
    """The text of corpus.json: documents, measures and chunks with their BM25 tokens."""
    corpus = {
        "documents": [doc_to_json(d) for d in documents],
        "measures": [asdict(m) for m in measures],
        "chunks": [asdict(c) | {"tokens": tokenize(c.index_text)} for c in chunks],
    }
    return json.dumps(corpus, ensure_ascii=False, indent=1)


def _measure_from_json(o: dict) -> Measure:
    o = dict(o)
    o["section_path"] = tuple(o["section_path"])
    o["departments"] = tuple(o["departments"])
    return Measure(**o)


@dataclass
class IndexData:
    """Everything a retriever needs, loaded and checked."""

    manifest: dict
    documents: dict[str, Document]
    measures: dict[str, Measure]
    chunks: list[Chunk]
    tokens: list[list[str]]
    vectors: np.ndarray
    faiss_index: object

    @property
    def embedder_id(self) -> str:
        return self.manifest["embedder"]


def write_index(
    index_dir: Path,
    documents: list[Document],
    measures: list[Measure],
    chunks: list[Chunk],
    vectors: np.ndarray,
    embedder_id: str,
    fingerprint: str,
    hnsw: bool = False,
) -> None:
    """Write a complete index atomically: a temporary folder next to `index_dir`, then a rename."""
    import faiss

    if vectors.shape[0] != len(chunks):
        raise ValueError(f"{vectors.shape[0]} vectors for {len(chunks)} chunks")
    index_dir = index_dir.resolve()
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_builds(index_dir)
    # The pid in the name tells a later build whether this folder's builder is still alive.
    tmp = Path(tempfile.mkdtemp(prefix=f".{index_dir.name}.build-{os.getpid()}-", dir=index_dir.parent))
    try:
        (tmp / CORPUS).write_text(corpus_json(documents, measures, chunks), encoding="utf-8")
        crash_point("tmp-partial")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        np.save(tmp / VECTORS, vectors, allow_pickle=False)
        dim = int(vectors.shape[1])
        if hnsw:
            index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexFlatIP(dim)
        index.add(vectors)
        faiss.write_index(index, str(tmp / FAISS_FILE))
        manifest = {
            "format": FORMAT,
            "embedder": embedder_id,
            "dim": dim,
            "faiss": "hnsw" if hnsw else "flat",
            "fingerprint": fingerprint,
            "documents": {d.doc_id: {"source_file": d.source_file, "sha256": d.sha256,
                                     "measures": sum(1 for m in measures if m.doc_id == d.doc_id)}
                          for d in documents},
            "chunks": len(chunks),
            "files": {name: sha256_path(tmp / name) for name in DATA_FILES},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        _fsync_folder(tmp, [*DATA_FILES, MANIFEST])
        crash_point("tmp-complete")
        _swap_into_place(tmp, index_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_into_place(tmp: Path, index_dir: Path) -> None:
    """Replace index_dir with tmp. The old index is renamed aside first, so there is always a whole
    index at one of two names; load() falls back to the aside copy if a crash hit between renames."""
    old = index_dir.with_name(f".{index_dir.name}.old")
    if not index_dir.exists() and (old / MANIFEST).exists():
        # An earlier build died between the two renames and nothing has loaded since: the aside
        # copy is the only whole index, so it goes back before anything is deleted.
        os.replace(old, index_dir)
    shutil.rmtree(old, ignore_errors=True)
    if index_dir.exists():
        os.replace(index_dir, old)
    crash_point("old-aside")
    os.replace(tmp, index_dir)
    _fsync_folder(index_dir.parent, [])
    crash_point("swapped")
    shutil.rmtree(old, ignore_errors=True)


def _fsync_folder(folder: Path, names: list[str]) -> None:
    """Flush the named files and the folder's entries, so a rename never publishes unwritten data."""
    for name in names:
        fd = os.open(folder / name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open a folder; the files above are flushed regardless
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_abandoned_builds(index_dir: Path) -> None:
    """Delete temporary folders left by builds that were killed (their process no longer exists)."""
    for path in index_dir.parent.glob(f".{index_dir.name}.build-*"):
        pid = path.name[len(f".{index_dir.name}.build-"):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:  # alive, another user's
            pass


def read_manifest(index_dir: Path) -> dict | None:
    path = index_dir / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def files_intact(index_dir: Path, manifest: dict) -> bool:
    """True when every data file the manifest lists is present with its recorded sha256."""
    files = manifest.get("files") or {}
    return set(files) == set(DATA_FILES) and all(
        (index_dir / name).is_file() and sha256_path(index_dir / name) == expected for name, expected in files.items())


def load_index(index_dir: Path, embedder_id: str | None = None) -> IndexData:
    """Load and check an index. Raises IndexLoadError with the fix in its message."""
    import faiss

    index_dir = Path(index_dir)
    if not (index_dir / MANIFEST).exists():
        old = index_dir.with_name(f".{index_dir.name}.old")
        if (old / MANIFEST).exists():  # a build was interrupted between its two renames
            os.replace(old, index_dir)
        else:
            raise IndexLoadError(f"no index in {index_dir}: run `jxa index build`")
    manifest = read_manifest(index_dir)
    if manifest is None:
        raise IndexLoadError(f"{index_dir / MANIFEST} is unreadable: run `jxa index build`")
    if manifest.get("format") != FORMAT:
        raise IndexLoadError(f"index in {index_dir} has format {manifest.get('format')}, this version reads "
                             f"{FORMAT}: run `jxa index build`")
    if embedder_id is not None and manifest.get("embedder") != embedder_id:
        raise IndexLoadError(f"index in {index_dir} was built with embedder {manifest.get('embedder')!r}, but "
                             f"settings ask for {embedder_id!r}: run `jxa index build` (or set JXA_EMBEDDER)")
    for name, expected in manifest.get("files", {}).items():
        path = index_dir / name
        if not path.exists() or sha256_path(path) != expected:
            raise IndexLoadError(f"index file {path} is missing or corrupted (hash mismatch): run `jxa index build`")
    try:
        corpus = json.loads((index_dir / CORPUS).read_text(encoding="utf-8"))
        vectors = np.load(index_dir / VECTORS, allow_pickle=False)
        faiss_index = faiss.read_index(str(index_dir / FAISS_FILE))
        documents = {d["doc_id"]: doc_from_json(d) for d in corpus["documents"]}
        measures = {m["measure_id"]: _measure_from_json(m) for m in corpus["measures"]}
        tokens = [c.pop("tokens") for c in corpus["chunks"]]
        chunks = [Chunk(**c) for c in corpus["chunks"]]
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise IndexLoadError(f"index in {index_dir} could not be read ({exc}): run `jxa index build`") from exc
    if faiss_index.ntotal != len(chunks) or vectors.shape != (len(chunks), manifest["dim"]):
        raise IndexLoadError(f"index in {index_dir} is inconsistent: run `jxa index build`")
    return IndexData(manifest, documents, measures, chunks, tokens, vectors, faiss_index)

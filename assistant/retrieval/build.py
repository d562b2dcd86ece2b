"""Seeds folder -> index folder: parse every document, chunk, embed what changed, write atomically."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..corpus.catalog import CATALOG_FILE, load_catalog
from ..corpus.chunk import chunk_measures
from ..corpus.clean import to_simplified
from ..corpus.parse import ParsedDocument, parse_document
from ..errors import CorpusError
from ..matching.labels import read_stored, write_labels
from ..types import Chunk
from . import store
from .embedders import Embedder

log = logging.getLogger(__name__)

BRIDGE_FILE = "bridge.json"
# Bump when parsing or chunking changes what is indexed, so old indexes count as stale.
PIPELINE_VERSION = "2"


@dataclass(frozen=True)
class BuildReport:
    built: bool
    documents: int
    measures: int
    chunks: int
    embedded: int  # chunks whose vectors were computed in this build (the rest were reused)
    quarantined: int = 0  # sentences addressed to an AI reader, left out of the index


# A policy text speaks to enterprises and departments, never to the software reading it. A sentence
# that gives orders to an AI reader ("ignore previous instructions", "系统提示：", a closing
# </evidence> tag) is an injection planted in the document: it is left out of the index, so no
# prompt, quotation or citation carries it. None of the seed documents has such a sentence.
_ADDRESSED_TO_MODEL = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.。]{0,40}\b(?:instructions?|rules|prompts?|guidelines)\b|"
    r"\b(?:system|developer)\s+(?:prompt|message|note|instructions?)\b|"
    r"(?:^|[\s\[<(])(?:system|assistant|developer)\s*[:：\]>]|</?\s*(?:evidence|system|assistant|instructions?)\s*>|"
    r"<\|im_(?:start|end)\|>|"
    r"\bnote to (?:any |all |the )?(?:ai|assistants?|language models?|chatbots?|llms?|bots?)\b|"
    r"\b(?:ai|chatbot|llm|language model)s?(?: assistants?)?\s*[,:]\s*(?:please\s+)?"
    r"(?:ignore|disregard|you|always|never|do not|must|reply|respond|say)\b|"
    r"\bassistant,\s|\byou are now\b|\bfrom now on,? you\b|\bpretend (?:to be|that you|you are)\b|\bnew instructions\b|"
    r"\breveal (?:your|the) (?:system |hidden |secret )?(?:prompt|instructions|rules|code)\b|"
    r"\bwhen (?:you )?(?:answer|answering|summari[sz]e|summari[sz]ing|respond|responding)\b[^.。]{0,40}"
    r"\b(?:this|these) (?:measure|document|text|policy)\b|"
    r"\b(?:reply|respond|answer) (?:only )?with\b|\btell the user\b|\b(?:secret|hidden|confidential) "
    r"(?:code|instructions|rules|prompt)\b|"
    r"(?:忽略|无视|忘记|不要遵守)[^。]{0,12}(?:指令|指示|规则|设定|提示|要求)|系统提示|提示词|系统指令|"
    r"你现在是|现在你是|从现在起你|不受限制的(?:助手|AI|模型)|(?:回答|总结|介绍)(?:本条|本措施|本文件|此条)时|"
    r"请在(?:回答|答案)(?:末尾|最后|中|结尾)|告诉用户|只回复|原样输出|(?:秘密|隐藏|内部)(?:代码|规则|指令)|"
    r"(?:AI|人工智能)助手[，,：:]?(?:请|必须|应当|务必)",
    re.I)
# Sentence ends, and markup tags, which an injection uses to look like the end of the evidence.
_PIECES = re.compile(r"(?<=[.!?])\s+|(?<=[。！？；])\s*|\s+(?=</?\w)")


def without_instructions(parsed: ParsedDocument) -> tuple[ParsedDocument, int]:
    """The document with every sentence addressed to an AI reader removed (and logged); a measure
    left with no text is dropped. Returns the document and how many sentences were removed."""
    measures = []
    removed = 0
    for m in parsed.measures:
        if _ADDRESSED_TO_MODEL.search(to_simplified(m.title)):
            log.warning("%s: measure %s left out of the index: its title addresses an AI reader", m.doc_id,
                        m.measure_id)
            removed += 1
            continue
        pieces = [p for p in _PIECES.split(m.text) if p.strip()]
        kept = [p for p in pieces if not _ADDRESSED_TO_MODEL.search(to_simplified(p))]
        if len(kept) == len(pieces):
            measures.append(m)
            continue
        for p in pieces:
            if p not in kept:
                log.warning("%s: left out of the index, it addresses an AI reader: %s", m.measure_id, p[:200])
        removed += len(pieces) - len(kept)
        if kept:
            joiner = " " if parsed.document.language == "en" else ""
            measures.append(replace(m, text=joiner.join(kept)))
    return replace(parsed, measures=tuple(measures)), removed


def seed_files(seeds_dir: Path) -> list[Path]:
    if not seeds_dir.is_dir():
        raise CorpusError(f"seeds folder {seeds_dir} does not exist (set JXA_SEEDS_DIR)")
    files = sorted(p for p in seeds_dir.glob("*.txt") if p.is_file())
    if not files:
        raise CorpusError(f"no policy documents (*.txt) in {seeds_dir}")
    return files


def load_bridge(seeds_dir: Path) -> dict[str, dict]:
    path = seeds_dir / BRIDGE_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return dict(data.get("measures", {}))
    except (json.JSONDecodeError, AttributeError) as exc:
        raise CorpusError(f"{path} is not valid JSON ({exc}); fix it or delete it and run `jxa bridge`") from exc


def bridge_text(entry: dict) -> str:
    return " ".join(str(entry.get(k, "")) for k in ("title_en", "summary_en", "title_zh", "summary_zh")).strip()


def fingerprint(seeds_dir: Path, embedder_id: str, hnsw: bool) -> str:
    """Hash of everything that decides the index's content."""
    h = hashlib.sha256(f"{PIPELINE_VERSION}|{embedder_id}|{hnsw}".encode())
    for path in seed_files(seeds_dir) + [seeds_dir / CATALOG_FILE, seeds_dir / BRIDGE_FILE]:
        if path.exists():
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def is_current(index_dir: Path, seeds_dir: Path, embedder_id: str, hnsw: bool = False) -> bool:
    """Built from these seeds with this embedder, and not damaged since (a damaged index is rebuilt)."""
    manifest = store.read_manifest(index_dir)
    return (bool(manifest) and manifest.get("fingerprint") == fingerprint(seeds_dir, embedder_id, hnsw)
            and store.files_intact(index_dir, manifest))


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path} is not UTF-8 text: convert it (e.g. `iconv -f GB18030 -t UTF-8`)") from exc


def parse_seeds(seeds_dir: Path) -> list[ParsedDocument]:
    """Every document of the library folder, parsed; the catalog's entries override what they say."""
    files = seed_files(seeds_dir)  # first, so a wrong folder is named as such, not as a bad catalog
    catalog = load_catalog(seeds_dir)
    parsed = []
    seen: dict[str, str] = {}
    for path in files:
        p = parse_document(read_text(path), path.name, catalog.get(path.name))
        if p.document.doc_id in seen:
            raise CorpusError(f"{path.name} and {seen[p.document.doc_id]} both have the id {p.document.doc_id!r}: "
                              f"give one of them its own doc_id in {seeds_dir / CATALOG_FILE}")
        seen[p.document.doc_id] = path.name
        parsed.append(p)
    return with_successors(parsed)


def with_successors(parsed: list[ParsedDocument]) -> list[ParsedDocument]:
    """Each document replaced by a later one in the library learns its successor's name."""
    newer = {p.document.supersedes: p.document for p in parsed if p.document.supersedes}
    out = []
    for p in parsed:
        later = newer.get(p.document.doc_id)
        if later is not None:
            p = replace(p, document=replace(p.document, superseded_by=later.doc_number or later.title))
        out.append(p)
    return out


def _reusable_vectors(index_dir: Path, embedder_id: str) -> dict[str, np.ndarray]:
    """Vectors of the current index keyed by the hash of the text they embed."""
    try:
        old = store.load_index(index_dir, embedder_id)
    except Exception:  # no index, another embedder, or damaged: embed everything
        return {}
    return {_text_key(c): old.vectors[i] for i, c in enumerate(old.chunks)}


def _text_key(chunk: Chunk) -> str:
    return hashlib.sha256(chunk.index_text.encode()).hexdigest()


def build_index(
    seeds_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    *,
    hnsw: bool = False,
    force: bool = False,
    batch_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> BuildReport:
    """Build (or refresh) the index. Unchanged chunks keep their vectors; only new text is embedded."""
    fp = fingerprint(seeds_dir, embedder.id, hnsw)
    cleaned = [without_instructions(p) for p in parse_seeds(seeds_dir)]
    parsed = [p for p, _ in cleaned]
    quarantined = sum(n for _, n in cleaned)
    measures = [m for p in parsed for m in p.measures]
    manifest = store.read_manifest(index_dir)
    if not force and manifest and manifest.get("fingerprint") == fp and store.files_intact(index_dir, manifest):
        write_labels(index_dir, seeds_dir, [p.document for p in parsed], measures)  # the vocabulary may have changed
        return BuildReport(False, len(parsed), len(measures), manifest.get("chunks", 0), 0, quarantined)
    previous_labels = read_stored(index_dir)
    bridge = {k: bridge_text(v) for k, v in load_bridge(seeds_dir).items()}
    chunks = [c for p in parsed for c in chunk_measures(p.document, list(p.measures), bridge)]
    reuse = {} if force else _reusable_vectors(index_dir, embedder.id)
    vectors = np.zeros((len(chunks), 0), dtype=np.float32)
    todo = [i for i, c in enumerate(chunks) if _text_key(c) not in reuse]
    new: dict[int, np.ndarray] = {}
    for start in range(0, len(todo), batch_size):
        batch = todo[start:start + batch_size]
        embedded = embedder.embed_passages([chunks[i].index_text for i in batch])
        new.update(zip(batch, embedded, strict=True))
        if progress:
            progress(min(start + batch_size, len(todo)), len(todo))
    rows = [new[i] if i in new else reuse[_text_key(c)] for i, c in enumerate(chunks)]
    vectors = np.vstack(rows).astype(np.float32) if rows else vectors
    store.crash_point("embedded")
    store.write_index(index_dir, [p.document for p in parsed], measures, chunks, vectors, embedder.id, fp, hnsw)
    write_labels(index_dir, seeds_dir, [p.document for p in parsed], measures, previous_labels)
    log.info("index built: %d documents, %d measures, %d chunks, %d embedded", len(parsed), len(measures),
             len(chunks), len(todo))
    return BuildReport(True, len(parsed), len(measures), len(chunks), len(todo), quarantined)

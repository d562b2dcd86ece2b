"""The in-process llama-cpp-python backend: the only module that touches llama-cpp-python's internals
(`_ctx`, `_batch`, `_input_ids`, `n_tokens`, `_requires_eval`, the sequence-state C calls).

Those internals are not a public API, so they are used only with the versions tested here
(SUPPORTED_RANGE, pinned in pyproject.toml); with any other version the model still answers, but
prefix states and scoring (the rerank) turn off with a warning.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import threading
import time
from pathlib import Path

from ..errors import BackendError, ConfigError
from .prefix_states import PrefixStates, shared_prefix
from .sampling import SAMPLING

log = logging.getLogger(__name__)

Message = dict[str, str]

#: the llama-cpp-python versions whose internals this module was tested against: [low, high)
SUPPORTED = ((0, 3, 36), (0, 4, 0))
SUPPORTED_RANGE = ">=0.3.36,<0.4"


def llama_cpp_version() -> str:
    from importlib.metadata import version

    return version("llama_cpp_python")


def internals_supported(installed: str | None = None) -> bool:
    """Whether the installed llama-cpp-python is one this module's use of its internals was tested on."""
    installed = installed or llama_cpp_version()
    try:
        parts = tuple(int(p) for p in installed.split("+")[0].split(".")[:3])
    except ValueError:
        parts = ()
    ok = len(parts) == 3 and SUPPORTED[0] <= parts < SUPPORTED[1]
    if not ok:
        log.warning("llama-cpp-python %s is outside the tested range %s: prefix states and scoring are off",
                    installed, SUPPORTED_RANGE)
    return ok


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


class LlamaCppLLM:
    """llama-cpp-python in this process. A `Llama` object is not thread-safe, so every call holds a
    lock for the whole generation: concurrent requests queue here instead of corrupting state.

    With `prefix_dir`, prompts are formatted with the model's own chat template and tokenized here, so
    a stored prefix state (see PrefixStates, filled by `warm`) can stand in for most of the prompt.
    """

    #: the model server's scoring route (prompt_logprobs) loads a cached state only when it saves at
    #: least this many tokens over what its context holds
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
        self._origin: str | None = None  # the stored state the context begins with, as read from its file
        # Stored states and scoring write llama-cpp-python's internals; outside the tested versions
        # they are left off rather than trusted to do what they did there.
        self.internals = internals_supported()
        if prefix_dir is not None and self._format is not None and self.internals:
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
                                                              temperature=temperature, **SAMPLING, stream=True)
                    texts = (c["choices"][0].get("delta", {}).get("content") for c in chunks)
                else:
                    tokens, stop = self._prompt(messages)
                    if len(tokens) + max_tokens > self.n_ctx:
                        raise BackendError(f"the prompt has {len(tokens)} tokens; the context holds {self.n_ctx}")
                    self._load_prefix(tokens)
                    chunks = self._llm.create_completion(prompt=tokens, max_tokens=max_tokens, stop=stop,
                                                         temperature=temperature, **SAMPLING, stream=True)
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
            shared = shared_prefix(self._llm._input_ids.tolist(), tokens)
            if shared < self._llm.n_tokens:
                self._cut(shared)
            self._llm.eval(tokens[shared:])
            array = (llama_cpp.llama_token * len(tokens))(*tokens)

            def write(path: Path) -> None:
                if not llama_cpp.llama_state_seq_save_file(self._llm._ctx.ctx, str(path).encode(), 0, array,
                                                           len(tokens)):
                    raise BackendError(f"could not write the prefix state {path}")

            self.prefixes.add(tokens, write)
            self._origin = self.prefixes.name(tokens)  # the context is now exactly the state just written
        return True

    def _cut(self, n: int) -> None:
        """Drop the context after its first n tokens."""
        self._llm._ctx.kv_cache_seq_rm(-1, n, -1)
        self._llm.n_tokens = n
        if self._origin is not None and n < len(self.prefixes.tokens(self._origin)):
            self._origin = None

    def _start_empty(self) -> None:
        self._llm._ctx.kv_cache_clear()
        self._llm.n_tokens = 0
        self._origin = None

    def score(self, messages: list[Message], target: str) -> float:
        """Mean log-probability per token of `target`, the text the last message ends with, given the
        prompt before it. A stored prefix state covers most of that prompt, so scoring a question
        under a measure costs the question's own tokens."""
        if self._format is None:
            raise BackendError("scoring needs the model's chat template")
        if not self.internals:
            raise BackendError(f"scoring is off with llama-cpp-python {llama_cpp_version()} (tested: {SUPPORTED_RANGE})")
        content = messages[-1]["content"]
        if not target or not content.endswith(target):
            raise BackendError("the scored text must end the last message")
        full, _ = self._prompt(messages)
        head, _ = self._prompt(messages[:-1] + [dict(messages[-1], content=content[: -len(target)])])
        start = shared_prefix(head, full)
        end = len(full) - shared_prefix(head[::-1], full[::-1])
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
                keep = min(shared_prefix(self._llm._input_ids.tolist(), full), start - 1)
                self._cut(keep)
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
        """Start from the stored state that shares most of `tokens`, or from an empty context when none
        does, whatever the context holds now. Greedy decoding gives the same reply only from the same
        starting state: reusing what an earlier prompt left (llama.cpp's own prefix reuse) evaluates the
        rest in other batches, and the same question then got another reply the second time."""
        if not self.prefixes:
            return
        found = self.prefixes.best(tokens)
        if found is None or found[1] == 0:
            self._start_empty()
            return
        name, shared, stored = found
        if self._origin == name and self._llm.n_tokens >= len(stored) and \
                tuple(self._llm.input_ids[: len(stored)].tolist()) == stored:
            # The context still begins with that state: cut it back to it rather than read the file again.
            self._cut(len(stored))
            self._llm._requires_eval = True
        elif not self._read_state(name, stored):
            self._start_empty()
            return
        # A state that is not all prefix of this prompt is cut back by the evaluation that follows.
        self._origin = name if shared == len(stored) else None

    def _read_state(self, name: str, stored: tuple[int, ...]) -> bool:
        import llama_cpp

        self._llm._ctx.kv_cache_clear()
        out = (llama_cpp.llama_token * len(stored))()
        count = ctypes.c_size_t(0)
        read = llama_cpp.llama_state_seq_load_file(self._llm._ctx.ctx, str(self.prefixes.path(name)).encode(), 0,
                                                   out, len(stored), ctypes.byref(count))
        if not read or count.value != len(stored) or tuple(out[: count.value]) != stored:
            log.warning("prefix state %s did not load; evaluating the whole prompt", name)
            self.prefixes.discard(name)
            return False
        self.prefixes.touch(name)
        self._llm.input_ids[: len(stored)] = stored
        self._llm.n_tokens = len(stored)
        self._llm._requires_eval = True  # the logits were not restored: the tail decode refreshes them
        return True


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


def prompt_logprobs(llama, text: str, start: int = 1) -> tuple[list[int], list[float | None]]:
    """Tokens of `text` (tokenized as the server's completions are) and, from token `start` on, the
    log-probability of each given the tokens before it (None before `start`)."""
    import numpy as np

    tokens = llama.tokenize(text.encode("utf-8"), special=True)
    n = len(tokens)
    start = max(1, min(start, n))
    if n > llama.n_ctx():
        raise BackendError(f"the prompt has {n} tokens; the context holds {llama.n_ctx()}")
    in_context = llama.longest_token_prefix(llama._input_ids.tolist(), tokens)
    if llama.cache is not None:
        try:
            cached = llama.cache[tokens]
        except KeyError:
            cached = None
        if cached is not None:
            shared = llama.longest_token_prefix(cached.input_ids.tolist(), tokens)
            if min(shared, start - 1) >= min(in_context, start - 1) + LlamaCppLLM.MIN_GAIN:
                llama.load_state(cached)
                in_context = shared
    # The row before the first scored token must be decoded again: its logits are not kept.
    keep = min(in_context, start - 1)
    llama._ctx.kv_cache_seq_rm(-1, keep, -1)
    llama.n_tokens = keep
    out: list[float | None] = [None] * n
    vocab = llama.n_vocab()
    for i in range(keep, n, llama.n_batch):
        batch = tokens[i: min(n, i + llama.n_batch)]
        llama._batch.set_batch(batch=batch, n_past=i, logits_all=True)
        llama._ctx.decode(llama._batch)
        logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(len(batch), vocab))
        llama.input_ids[i: i + len(batch)] = batch
        llama.n_tokens = i + len(batch)
        for row in range(len(batch)):
            target = i + row + 1  # row j predicts the token after it
            if start <= target < n:
                x = logits[row]
                peak = float(x.max())
                out[target] = float(x[tokens[target]] - peak - np.log(np.exp(x - peak).sum()))
    llama._requires_eval = True  # the sampler's logits are not the next prompt's
    return tokens, out

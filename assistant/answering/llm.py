"""Language-model backends behind one small interface.

    "llama-cpp"            in-process llama-cpp-python on a GGUF file (default: the bundled Qwen2.5 1.5B)
    "openai:BASE_URL"      any OpenAI-compatible server (llama.cpp's server, vLLM), e.g. openai:http://gpu-box:8000/v1
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..errors import BackendError, ConfigError
from .prefix_states import PrefixStates, shared_prefix
from .sampling import SAMPLING

if TYPE_CHECKING:
    from .llamacpp import GGUFVocab

log = logging.getLogger(__name__)

Message = dict[str, str]


class LLM(Protocol):
    """A generator: streams the reply to a chat as text deltas. `id` identifies the model for caching."""

    id: str

    def stream(self, messages: list[Message], *, max_tokens: int, temperature: float,
               timeout_s: float) -> Iterator[str]: ...

    def count_tokens(self, text: str) -> int: ...


@runtime_checkable
class Scorer(Protocol):
    """A backend that can score: the mean log-probability of `target` (the end of the last message)
    given what precedes it. Only scorers are asked to rerank."""

    def score(self, messages: list[Message], target: str) -> float: ...


@runtime_checkable
class PrefixStateStore(Protocol):
    """A backend that keeps the model's state after prompt prefixes (`prefixes` is None when off)."""

    prefixes: PrefixStates | None

    def warm(self, messages: list[Message]) -> bool: ...


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
                 vocab: GGUFVocab | None = None, identity: str = ""):
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"remote LLM URL {base_url!r} must start with http:// or https://")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.vocab = vocab
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
                    "temperature": temperature, **SAMPLING, "stream": True}
            yield from self._events("/chat/completions", body, timeout_s,
                                    lambda choice: choice.get("delta", {}).get("content"))
            return
        prompt, stop = self.vocab.prompt(messages)
        body = {"model": self.model, "prompt": prompt, "max_tokens": max_tokens, "temperature": temperature,
                **SAMPLING, "stop": stop, "stream": True}
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
        start = shared_prefix(head, full)
        end = len(full) - shared_prefix(head[::-1], full[::-1])
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


def llm_backends() -> set[str]:
    """The prefixes an `llm` setting may start with (the built-in backends and any registered since)."""
    return set(_REGISTRY)


def _llama_cpp(arg: str, settings) -> LLM:
    from ..provision import GGUF_SHA256, resolve_llm_model
    from .llamacpp import LlamaCppLLM

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
    from .llamacpp import GGUFVocab

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

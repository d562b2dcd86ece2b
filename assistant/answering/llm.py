"""Language-model backends behind one small interface.

    "llama-cpp"            in-process llama-cpp-python on a GGUF file (default: the bundled Qwen2.5 1.5B)
    "openai:BASE_URL"      any OpenAI-compatible server (llama.cpp's server, vLLM), e.g. openai:http://gpu-box:8000/v1
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

from ..errors import BackendError, ConfigError
from .prefix_states import PrefixStates

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
    """A remote OpenAI-compatible chat server, streamed over server-sent events."""

    def __init__(self, base_url: str, *, model: str = "default", api_key: str = "", chars_per_token: float = 2.5):
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"remote LLM URL {base_url!r} must start with http:// or https://")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self._chars_per_token = chars_per_token
        self.id = f"openai:{self.base_url}:{model}"

    def count_tokens(self, text: str) -> int:
        # The server's tokenizer is not reachable here; a conservative estimate keeps within budget.
        return int(len(text) / self._chars_per_token) + 1

    def stream(self, messages, *, max_tokens, temperature, timeout_s):
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens,
                "temperature": temperature, "stream": True}
        deadline = time.monotonic() + timeout_s
        try:
            with httpx.Client(timeout=httpx.Timeout(timeout_s, connect=min(5.0, timeout_s))) as client:
                with client.stream("POST", f"{self.base_url}/chat/completions", json=body, headers=headers) as r:
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
                            delta = json.loads(data)["choices"][0].get("delta", {}).get("content")
                        except (json.JSONDecodeError, KeyError, IndexError) as exc:
                            raise BackendError(f"remote model sent a malformed event: {data[:80]}") from exc
                        if delta:
                            yield delta
        except httpx.HTTPError as exc:
            raise BackendError(f"remote model unreachable or failed: {exc}") from exc


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
                       prefix_dir=prefix_dir)


def _openai(arg: str, settings) -> LLM:
    return OpenAICompatLLM(arg, model=settings.llm_remote_model, api_key=settings.llm_api_key)


register_llm("llama-cpp", _llama_cpp)
register_llm("openai", _openai)


def get_llm(settings) -> LLM:
    prefix, _, arg = settings.llm.partition(":")
    factory = _REGISTRY.get(prefix)
    if factory is None:
        raise ConfigError(f"unknown llm {settings.llm!r}: use one of {sorted(_REGISTRY)}")
    return factory(arg, settings)

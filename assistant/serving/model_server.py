"""The shared model server: llama-cpp-python's own OpenAI-compatible server (`llama_cpp.server`) on
the GGUF, for several app replicas (`JXA_LLM=openai:http://HOST:PORT/v1`).

What is ours is the configuration and one route. The configuration: requests are not interrupted by
newer ones (the server's default drops a reply half-way when another request arrives, which several
replicas would do to each other all day), and prompt states are cached in RAM, so a prompt that
begins like an earlier one (the same measure, the relevance check after a reply) evaluates only its
tail. The route: prompt log-probabilities, the legacy OpenAI contract (`/v1/completions` with
`echo: true, logprobs: 0, max_tokens: 0`). llama-cpp-python's own answer to that request aligns each
token with the distribution that follows it rather than the one before it, sorts the whole vocabulary
in Python for every token, and needs every logit of the context kept (2.5 GB at 4096 tokens), so
this module answers it instead, computing only the rows asked for. An optional `logprob_start` (a
token index) says where the caller's interest begins: the state before it comes from the cache, as
for a completion, and earlier tokens get null log-probabilities, as the first token always does.

Tested with llama-cpp-python 0.3.36 (requirements/lock.txt); the route touches the Llama object the
way answering/llm.py's in-process scoring does, under the server's own lock.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from fastapi import Request

from ..errors import BackendError

log = logging.getLogger(__name__)

@runtime_checkable
class HealthReporting(Protocol):
    """A backend whose model lives elsewhere and can be down while the app is up."""

    def health(self) -> str | None:
        """None when the model can answer, else why not."""



def state_cache(capacity_bytes: int):
    """llama-cpp-python's RAM prompt cache, keeping each state's KV only.

    Its states also copy the logits buffer (n_batch x vocabulary floats: 311 MB for this model),
    which its size limit does not count, so 2 GB of states could hold 20 GB; the logits are not
    needed (a loaded state's last token is evaluated again before sampling), so one row is kept and
    the limit means what it says."""
    from llama_cpp import LlamaRAMCache

    class KVStateCache(LlamaRAMCache):
        def __setitem__(self, key, value) -> None:
            value.scores = value.scores[:1].copy()
            super().__setitem__(key, value)

    return KVStateCache(capacity_bytes)


def create_app(model: Path, *, n_ctx: int = 4096, n_threads: int = 2, cache_bytes: int = 2 << 30,
               api_key: str = "", alias: str = "default", gpu_layers: int = 0):
    """llama_cpp.server's app on one GGUF, with the prompt log-probability route in front."""
    from fastapi.responses import JSONResponse
    from llama_cpp.server import app as server_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings
    from starlette.concurrency import run_in_threadpool

    from ..answering.llamacpp import avoid_amx

    avoid_amx()

    server = ServerSettings(interrupt_requests=False, api_key=api_key or None)
    settings = ModelSettings(model=str(model), model_alias=alias, n_ctx=n_ctx, n_threads=n_threads,
                             n_threads_batch=n_threads, n_batch=512, logits_all=False, cache=False, verbose=False,
                             n_gpu_layers=gpu_layers)
    app = server_app.create_app(server_settings=server, model_settings=[settings])
    if cache_bytes > 0:
        server_app._llama_proxy(alias).set_cache(state_cache(cache_bytes))  # the model the server just loaded
    original = server_app.create_completion

    async def completions(request: Request):
        if api_key:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), api_key.encode()):
                return JSONResponse({"error": {"message": "invalid API key", "code": 401}}, status_code=401)
        from llama_cpp.server.types import CreateCompletionRequest

        data = await request.json()
        if not (isinstance(data, dict) and data.get("echo") is True and data.get("logprobs") is not None
                and data.get("max_tokens") == 0 and not data.get("stream")):
            return await original(request, CreateCompletionRequest.model_validate(data))
        prompt = data.get("prompt", "")
        prompt = prompt[0] if isinstance(prompt, list) and len(prompt) == 1 else prompt
        start = data.get("logprob_start", 1)
        if not isinstance(prompt, str) or not isinstance(start, int) or isinstance(start, bool) or start < 0:
            return JSONResponse({"error": {"message": "prompt must be one string and logprob_start a token "
                                                      "index", "code": 400}}, status_code=400)
        model_name = data.get("model") if isinstance(data.get("model"), str) else None
        async with contextlib.asynccontextmanager(server_app.get_llama_proxy)() as proxy:
            llama = proxy(model_name)
            try:
                from ..answering.llamacpp import prompt_logprobs

                tokens, logprobs = await run_in_threadpool(prompt_logprobs, llama, prompt, start)
            except BackendError as exc:
                return JSONResponse({"error": {"message": str(exc), "code": 400}}, status_code=400)
            pieces = [llama.detokenize([t]).decode("utf-8", errors="replace") for t in tokens]
        offsets, at = [], 0
        for piece in pieces:
            offsets.append(at)
            at += len(piece)
        return {"id": f"cmpl-logprobs-{time.monotonic_ns()}", "object": "text_completion",
                "created": int(time.time()), "model": model_name or alias,
                "choices": [{"text": prompt, "index": 0, "finish_reason": "length",
                             "logprobs": {"tokens": pieces, "token_logprobs": logprobs, "text_offset": offsets,
                                          "top_logprobs": [None] * len(tokens)}}],
                "usage": {"prompt_tokens": len(tokens), "completion_tokens": 0, "total_tokens": len(tokens)}}

    app.router.add_api_route("/v1/completions", completions, methods=["POST"], include_in_schema=False)
    app.router.routes.insert(0, app.router.routes.pop())  # ahead of the server's own /v1/completions
    return app


# ---------------------------------------------------------------- a server process on loopback
@dataclass
class ModelServer:
    """A model server started as a child process (tests, benchmarks, `jxa model-server`).

    Example:
        >>> server = ModelServer.start(gguf, port=8081)
        >>> settings = Settings(llm=f"openai:{server.url}")
    """

    process: subprocess.Popen
    port: int
    log_path: Path
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @classmethod
    def start(cls, model: Path, *, port: int, log_path: Path, n_ctx: int = 4096, n_threads: int = 2,
              cache_bytes: int = 2 << 30, timeout_s: float = 240.0, host: str = "127.0.0.1") -> ModelServer:
        import httpx

        log_path.parent.mkdir(parents=True, exist_ok=True)
        out = open(log_path, "ab")
        cmd = [sys.executable, "-m", "assistant.serving.model_server", "--model", str(model), "--host", host,
               "--port", str(port), "--n-ctx", str(n_ctx), "--n-threads", str(n_threads),
               "--cache-bytes", str(cache_bytes)]
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        out.close()
        server = cls(process=proc, port=port, log_path=log_path, host=host)
        deadline = time.monotonic() + timeout_s  # loading 1 GB on a busy machine: a start-up limit only
        while True:
            if proc.poll() is not None:
                raise BackendError(f"the model server exited with {proc.returncode}: {server.log_tail()}")
            try:
                if httpx.get(f"{server.url}/models", timeout=2).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                server.stop()
                raise BackendError(f"the model server did not start within {timeout_s:.0f} s: {server.log_tail()}")
            time.sleep(0.5)

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def main(argv: list[str] | None = None) -> int:
    """`python -m assistant.serving.model_server` (and `jxa model-server`): serve the GGUF on a port."""
    import uvicorn

    from ..provision import resolve_llm_model

    parser = argparse.ArgumentParser(description="Serve the language model to several app replicas "
                                                 "(OpenAI-compatible, llama_cpp.server).")
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: the bundled model)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--n-threads", type=int, default=2)
    parser.add_argument("--cache-bytes", type=int, default=2 << 30, help="RAM for cached prompt states (0: none)")
    parser.add_argument("--gpu-layers", type=int, default=0, help="layers offloaded to a GPU (-1: all; needs a GPU build)")
    args = parser.parse_args(argv)
    from ..config import Settings

    model = args.model or resolve_llm_model(None, Settings().models_dir)
    api_key = os.environ.get("JXA_LLM_API_KEY", "")
    app = create_app(model, n_ctx=args.n_ctx, n_threads=args.n_threads, cache_bytes=args.cache_bytes,
                     api_key=api_key, gpu_layers=args.gpu_layers)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", server_header=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The HTTP API: /api/ask (the `jxa ask --json` shape), an OpenAI-compatible /v1/chat/completions,
feedback, and the health probes. Every error is JSON: {"error": {"code": ..., "message": ...}}."""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from typing import Any, Literal

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..answering.inputs import clean_history, clean_question
from ..errors import AssistantError, BackendError, IndexLoadError, InputError, ModelError
from ..serving.model_server import HealthReporting
from ..types import Answer
from .context import WebContext, new_session_id
from .deadline import DeadlineLLM
from .worker import END, Job, Overloaded, Starting

log = logging.getLogger(__name__)

MODEL_NAME = "jing-xiao-a"
MAX_HISTORY = 50  # turns a request may carry (the assistant keeps settings.max_history_turns of them)
_SESSION = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class ApiError(Exception):
    """Raised inside a route; the handler turns it into the JSON error body."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


# ---------------------------------------------------------------- request bodies
class AskRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    question: StrictStr
    history: list[tuple[StrictStr, StrictStr]] = Field(default_factory=list, max_length=MAX_HISTORY)


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ref: StrictStr = Field(min_length=8, max_length=64)
    rating: Literal[1, -1]
    comment: StrictStr | None = Field(None, max_length=2000)


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: StrictStr
    text: StrictStr | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: StrictStr | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text or "" for p in self.content if p.type == "text")


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # temperature, max_tokens, ... are the server's to decide

    messages: list[ChatMessage] = Field(min_length=1, max_length=2 * MAX_HISTORY + 1)
    model: StrictStr | None = None
    stream: bool = False
    n: StrictInt = 1


FEEDBACK_MAX_BODY = 16_000


def max_body(settings) -> int:
    """Largest body /api/ask and /v1/chat/completions accept: a question and a full history."""
    return max(64_000, 8 * settings.max_question_chars + 2 * MAX_HISTORY * settings.max_history_chars)


def _json_content_type(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


async def read_json(request: Request, model: type[BaseModel], max_bytes: int) -> Any:
    """Parse and validate a JSON body, with a clear 4xx for each way it can be wrong. Only a body
    declared as JSON is read: a form on another site can post text/plain without asking first."""
    if not _json_content_type(request):
        raise ApiError(415, "unsupported_media_type", "send the request body as JSON, with the header "
                                                      "Content-Type: application/json")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, "too_large", f"the request body is larger than {max_bytes:,} bytes")
    body = await request.body()
    if len(body) > max_bytes:
        raise ApiError(413, "too_large", f"the request body is larger than {max_bytes:,} bytes")
    try:
        text = body.decode("utf-8").removeprefix("\ufeff")  # a BOM, as some Windows clients send
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_encoding", "the request body is not valid UTF-8") from None
    try:
        data = json.loads(text)
        # JSON may spell an unpaired surrogate ("\ud800"); Python keeps it, and it would fail much
        # later, as a 500, when the answer that echoes it is encoded or stored.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except json.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the request body is not valid JSON ({exc.msg})") from None
    except UnicodeEncodeError:
        raise ApiError(400, "invalid_encoding", "the request contains an unpaired UTF-16 surrogate (\\ud800-\\udfff); "
                                                "send valid Unicode text") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise ApiError(400, "invalid_json", f"the request body is not valid JSON ({exc})") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "the request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_request", "the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", _validation_message(exc)) from None


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


# ---------------------------------------------------------------- helpers
def _client_key(ctx: WebContext, request: Request) -> str:
    return ctx.identity.key(request.headers, request.client.host if request.client else None)


def _session(request: Request) -> str:
    given = request.headers.get("x-session-id", "")
    return given if _SESSION.match(given) else new_session_id()


def _check_question(ctx: WebContext, question: str, history: list[tuple[str, str]]) -> str:
    try:
        question = clean_question(question, ctx.settings.max_question_chars)
    except InputError as exc:
        raise ApiError(400, "invalid_question", str(exc)) from None
    try:
        clean_history(history, ctx.settings.max_history_chars, ctx.settings.max_history_turns)
    except InputError as exc:
        raise ApiError(400, "invalid_history", str(exc)) from None
    return question


def _submit(ctx: WebContext, request: Request, question: str, history: list[tuple[str, str]]) -> Job:
    wait = ctx.limiter.check(_client_key(ctx, request))
    if wait:
        raise ApiError(429, "rate_limited", f"too many questions from this client; try again in {wait} s",
                       {"Retry-After": str(wait)})
    if ctx.worker.load_error:
        raise ApiError(503, "model_unavailable", f"the language model could not be loaded: {ctx.worker.load_error}")
    try:
        return ctx.worker.submit(question, history)
    except Starting as exc:
        raise ApiError(503, "starting", "the assistant is still loading its model; try again shortly",
                       {"Retry-After": str(exc.retry_after)}) from None
    except Overloaded as exc:
        raise ApiError(503, "overloaded", f"all {ctx.worker.queue_size + 1} places in the queue are taken; "
                                          f"try again in about {exc.retry_after} s",
                       {"Retry-After": str(exc.retry_after)}) from None


def _error_for(exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, InputError):
        return ApiError(400, "invalid_question", str(exc))
    if isinstance(exc, (IndexLoadError, ModelError)):
        return ApiError(503, "unavailable", str(exc))
    if isinstance(exc, BackendError):
        return ApiError(502, "backend_error", str(exc))
    if isinstance(exc, AssistantError):
        return ApiError(500, "assistant_error", str(exc))
    log.exception("unexpected error while answering", exc_info=exc)
    return ApiError(500, "internal_error", "an internal error occurred; it has been logged")


async def _result(job: Job) -> Answer:
    try:
        return await anyio.to_thread.run_sync(job.result, abandon_on_cancel=True)
    finally:
        job.cancel()


def _record(ctx: WebContext, answer: Answer, job: Job, session_id: str, channel: str) -> str | None:
    try:
        return ctx.records.add(answer, session_id=session_id, channel=channel,
                               extra_timings={"queue_ms": job.queue_ms})
    except Exception:  # a full disk must not cost the visitor their answer
        log.exception("could not store the consultation record")
        return None


def _history_from_messages(messages: list[ChatMessage]) -> tuple[str, list[tuple[str, str]]]:
    """The last user message is the question; earlier user/assistant turns become history pairs.
    System and tool messages are ignored: the server's own instructions are the only ones."""
    if messages[-1].role != "user":
        raise ApiError(400, "invalid_request", "the last message must have role 'user'")
    history: list[tuple[str, str]] = []
    pending: str | None = None
    for m in messages[:-1]:
        if m.role == "user":
            pending = m.text()
        elif m.role == "assistant" and pending is not None:
            history.append((pending, m.text()))
            pending = None
    return messages[-1].text(), history


# ---------------------------------------------------------------- routes
def build_router(ctx: WebContext) -> APIRouter:
    router = APIRouter()
    body_limit = max_body(ctx.settings)

    @router.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @router.get("/readyz")
    def readyz() -> JSONResponse:
        body: dict[str, Any] = {"index": ctx.assistant.retriever.summary()}
        if ctx.worker.load_error:
            return JSONResponse({"status": "error", **body, "error": {
                "code": "model_unavailable", "message": ctx.worker.load_error}}, status_code=503)
        if not ctx.ready:
            return JSONResponse({"status": "loading", **body}, status_code=503, headers={"Retry-After": "10"})
        llm = ctx.assistant.llm
        backend = llm.inner if isinstance(llm, DeadlineLLM) else llm
        if isinstance(backend, HealthReporting):
            problem = backend.health()
            if problem is not None:  # a load balancer sends this replica's questions elsewhere meanwhile
                return JSONResponse({"status": "error", **body, "error": {
                    "code": "model_server_unavailable", "message": problem}}, status_code=503,
                    headers={"Retry-After": "5"})
            body["model_server"] = "ok"
        return JSONResponse({"status": "ready", **body, "model": llm.id})

    @router.post("/api/ask")
    async def ask(request: Request) -> JSONResponse:
        req: AskRequest = await read_json(request, AskRequest, body_limit)
        history = [(u, a) for u, a in req.history]
        question = _check_question(ctx, req.question, history)
        session_id = _session(request)
        job = _submit(ctx, request, question, history)
        try:
            answer = await _result(job)
        except Exception as exc:
            raise _error_for(exc) from None
        ref = await anyio.to_thread.run_sync(_record, ctx, answer, job, session_id, "api")
        headers = {"X-Record-Ref": ref} if ref else {}
        return JSONResponse(answer.to_json(), headers=headers)

    @router.post("/api/feedback")
    async def feedback(request: Request) -> JSONResponse:
        req: FeedbackRequest = await read_json(request, FeedbackRequest, FEEDBACK_MAX_BODY)
        found = await anyio.to_thread.run_sync(ctx.records.set_feedback, req.ref, req.rating, req.comment)
        if not found:
            raise ApiError(404, "not_found", "no consultation with that reference")
        return JSONResponse({"status": "ok"})

    @router.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": MODEL_NAME, "object": "model", "created": 0,
                                            "owned_by": "local"}]}

    @router.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        req: ChatRequest = await read_json(request, ChatRequest, body_limit)
        if req.n != 1:
            raise ApiError(400, "invalid_request", "only n=1 is supported")
        raw_question, history = _history_from_messages(req.messages)
        question = _check_question(ctx, raw_question, history)
        session_id = _session(request)
        job = _submit(ctx, request, question, history)
        completion_id = f"chatcmpl-{secrets.token_hex(12)}"
        created = int(time.time())
        if not req.stream:
            try:
                answer = await _result(job)
            except Exception as exc:
                raise _error_for(exc) from None
            ref = await anyio.to_thread.run_sync(_record, ctx, answer, job, session_id, "openai")
            return JSONResponse({
                "id": completion_id, "object": "chat.completion", "created": created, "model": MODEL_NAME,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.answer},
                             "finish_reason": "stop"}],
                "usage": None,
                "citations": [c.to_json() for c in answer.citations],
                "refused": answer.refused,
                "record_ref": ref,
            })
        return StreamingResponse(_sse(ctx, job, completion_id, created, session_id), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # Everything else under /api and /v1 would fall through to the chat UI mounted at "/"; answer
    # it here so API clients always get the JSON error shape.
    known = {route.path for route in router.routes}

    @router.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    @router.api_route("/v1/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def not_here(request: Request, rest: str) -> Response:
        if request.url.path in known:
            raise ApiError(405, "method_not_allowed", f"{request.method} is not allowed on {request.url.path}")
        raise ApiError(404, "not_found", f"no endpoint {request.url.path}")

    return router


def _chunk(completion_id: str, created: int, delta: dict, finish: str | None = None, **extra) -> str:
    payload = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": MODEL_NAME,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


async def _sse(ctx: WebContext, job: Job, completion_id: str, created: int, session_id: str):
    """OpenAI's stream format: a role chunk, content chunks, a finishing chunk (here with the
    citations), then [DONE]. An error after the stream began arrives as an error event."""
    try:
        yield _chunk(completion_id, created, {"role": "assistant", "content": ""})
        while True:
            event = await anyio.to_thread.run_sync(job.next_event, 1.0, abandon_on_cancel=True)
            if event is None:
                continue
            if event is END:
                break
            if event.kind == "delta":
                yield _chunk(completion_id, created, {"content": event.text})
            elif event.kind == "final" and event.answer is not None:
                answer = event.answer
                ref = await anyio.to_thread.run_sync(_record, ctx, answer, job, session_id, "openai")
                yield _chunk(completion_id, created, {}, "stop",
                             citations=[c.to_json() for c in answer.citations], refused=answer.refused,
                             record_ref=ref)
    except Exception as exc:
        err = _error_for(exc)
        yield f"data: {json.dumps({'error': {'code': err.code, 'message': err.message}}, ensure_ascii=False)}\n\n"
    finally:
        job.cancel()
    yield "data: [DONE]\n\n"


# ---------------------------------------------------------------- error handlers
def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        return error_response(422, "invalid_request", f"{where}: {first.get('msg')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, f"http_{exc.status_code}")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path, exc_info=exc)
        return error_response(500, "internal_error", "an internal error occurred; it has been logged")

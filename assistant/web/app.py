"""`create_app`: one FastAPI server holding the API, the insights page and the Gradio chat, all on
one Assistant behind one inference worker."""

from __future__ import annotations

import contextlib
import logging
import os

# Set before Gradio is imported anywhere: the server is offline and reports to no one.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from fastapi import FastAPI  # noqa: E402
from fastapi.middleware.cors import CORSMiddleware  # noqa: E402

from ..answering.assistant import Assistant  # noqa: E402
from ..config import Settings  # noqa: E402
from ..corpus.read import MAX_BYTES as MAX_DOCUMENT_BYTES  # noqa: E402
from ..record_stores import open_records  # noqa: E402
from . import api, clients, health_check, insights_page  # noqa: E402
from .context import RateLimiter, WebContext  # noqa: E402
from .guard import Guard  # noqa: E402
from .reload import IndexWatcher  # noqa: E402
from .worker import InferenceWorker  # noqa: E402

log = logging.getLogger(__name__)


def create_app(settings: Settings, assistant: Assistant | None = None, *, kiosk: bool = False,
               load_model: bool = True) -> FastAPI:
    """Build the server.

    Args:
        settings: the one Settings object.
        assistant: an Assistant to use (tests pass one on fakes); default: built from settings.
            The index is loaded here, so a missing index fails at once with its fix.
        kiosk: serve the kiosk variant of the chat (large type, idle reset).
        load_model: load the language model at startup on the worker thread; /readyz says 503
            until it is in memory. With False it loads on the first question.

    Example:
        >>> app = create_app(Settings())
        >>> uvicorn.run(app, host="127.0.0.1", port=7860)
    """
    import gradio as gr

    from .ui import build_ui

    assistant = assistant or Assistant.from_settings(settings)
    records = open_records(settings)
    purged = records.purge(settings.retention_days)
    if purged:
        log.warning("deleted %d consultation records older than %d days", purged, settings.retention_days)
    worker = InferenceWorker(assistant, settings.queue_size)
    ctx = WebContext(settings=settings, assistant=assistant, worker=worker, records=records, kiosk=kiosk,
                     limiter=RateLimiter(settings.rate_limit_per_min))

    watcher = IndexWatcher(ctx, settings.index_watch_s)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if load_model and not assistant.ready:
            worker.load_model()
        watcher.start()
        yield
        watcher.stop()
        worker.close()

    app = FastAPI(title="Jing Xiao A", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ctx = ctx
    app.state.index_watcher = watcher
    api.install_error_handlers(app)
    origins = settings.cors_origin_list
    # Always installed: with our own CORSMiddleware Gradio adds none of its own, so an empty list
    # really means "same origin only".
    app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                       allow_headers=["Content-Type", "Authorization", "X-Session-Id"],
                       expose_headers=["X-Record-Ref", "Retry-After"], allow_credentials=False)
    # Outermost, so that nothing (CORS included) sees a request it refuses.
    body = api.max_body(settings)
    app.add_middleware(Guard, settings=settings, limits={
        "/api/ask": body, "/v1/chat/completions": body, "/api/feedback": api.FEEDBACK_MAX_BODY,
        "/insights/login": insights_page.LOGIN_MAX_BODY, "/insights/logout": 1024,
        # a document upload: the reader's own limit plus the multipart envelope
        "/insights/library/preview": MAX_DOCUMENT_BYTES + 64_000})
    ctx.health = health_check.HealthCheckWeb(ctx)
    app.include_router(health_check.build_router(ctx, ctx.health))
    app.include_router(api.build_router(ctx))
    app.include_router(insights_page.build_router(ctx))
    app.include_router(clients.build_router(settings, ctx.identity))

    demo, css = build_ui(ctx)
    # Enough Gradio queue for everyone the worker could take plus a margin; the worker, not this
    # number, is what keeps two generations from running at once.
    # api_open=False: the answer event is reachable only through the queue, not run/predict.
    demo.queue(max_size=4 * (settings.queue_size + 1) + 8, default_concurrency_limit=1, api_open=False)
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])
    return gr.mount_gradio_app(app, demo, path="/", footer_links=[], run_history=False, show_error=False,
                               ssr_mode=False, mcp_server=False, pwa=False, theme=theme, css=css,
                               server_name=settings.host, server_port=settings.port)

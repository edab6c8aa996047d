"""The web app: JSON endpoints and a page to try a model on your own sentences.

    GET  /                 the page (type a sentence, see the prediction and the attention)
    GET  /health           {"status": "ok"}
    GET  /info             model config, task, labels, limits, version
    POST /api/tokenize     {"texts": [...], "pairs": [...]?}
    POST /api/fill-mask    {"texts": [...], "top_k": 5}          (pretrained checkpoints)
    POST /api/embeddings   {"texts": [...], "pooling": "mean"|"cls", "normalize": true}
    POST /api/predict      {"texts": [...], "pairs": [...]?}      (the checkpoint's task head;
                                                                 QA: texts = questions, pairs = contexts)
    POST /api/attention    {"text": "...", "pair": "..."?, "packed": false}
    POST /api/generate     {"prompt": "...", "max_new_tokens": 50, ...}   (causal LM checkpoints;
                           the settings of `GenerationConfig`; answers with server-sent events)
    POST /api/translate    {"texts": [lines], "num_beams": 4, "max_new_tokens": 64?, "length_penalty": 1.0}
                           (translation models; num_beams 1 = greedy)
    POST /api/translate/attention  {"text": source line, "token_ids": [ids of its translation]}
                           (the cross-attention: output tokens x source tokens)

Every bad request gets a 4xx JSON answer `{"error": "...", "field": "..."}` that names the field
(`request_bodies.py`);
inference runs in a thread pool, so one slow request does not hold up the others. Only requests for
this server's own host names and POST bodies sent as JSON are served (`security.py`), and every
answer stays within the configured limits (texts, masks, candidates, tokens, bytes).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from hanformer import __version__
from hanformer.errors import HanformerError
from hanformer.serving.config import ServeConfig
from hanformer.serving.engine import GenerationCancelled, InferenceEngine
from hanformer.serving.errors import FieldError, answer_too_large
from hanformer.serving.hosts import LOOPBACK_NAMES, WILDCARD_ADDRESSES
from hanformer.serving.request_bodies import (
    BodyLimit,
    RequestError,
    check_pairs,
    error_response,
    parse_body,
    request_models,
)
from hanformer.serving.security import HostRules, RequestGuard
from hanformer.serving.streaming import EventStream, WorkerStream, sse
from hanformer.serving.translation import Decoding
from hanformer.visualization.html import ASSETS_DIR

if TYPE_CHECKING:
    from hanformer.generation.config import GenerationConfig

STATIC_DIR = Path(__file__).parent / "static"
log = logging.getLogger("hanformer.serving")


def json_answer(content: dict[str, Any], max_bytes: int) -> Response:
    """`content` as JSON (as `JSONResponse` writes it), refused with 422 when over `max_bytes`.

    The engine refuses the answers it can foresee to be large before computing them; this is
    the final word for every endpoint."""
    body = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    if len(body) > max_bytes:
        raise RequestError(422, "body", answer_too_large(len(body), max_bytes, "send fewer or shorter texts"))
    return Response(body, media_type="application/json")


# ---- the app ------------------------------------------------------------------------------

def create_app(model_dir: str | Path, config: ServeConfig | None = None) -> FastAPI:
    """Load the checkpoint in `model_dir` and build the app (run it with `serve` or any ASGI server)."""
    cfg = config or ServeConfig()
    cfg.validate()
    if cfg.torch_threads:
        import torch

        torch.set_num_threads(cfg.torch_threads)
    engine = InferenceEngine(model_dir, cfg)
    models = request_models(cfg)

    app = FastAPI(title="hanformer", version=__version__, docs_url=None, redoc_url=None,
                  description="Try a hanformer checkpoint: tokenize, fill-mask, embeddings, predict, attention, "
                              "generate, translate.")
    app.state.engine = engine
    app.state.config = cfg
    app.add_middleware(BodyLimit, max_bytes=cfg.max_body_bytes)
    # Added last, so it runs first: a foreign page's request is refused before anything is read.
    app.add_middleware(RequestGuard, rules=HostRules(cfg.host, cfg.allowed_hosts))

    @app.exception_handler(RequestError)
    async def _requesterror_response(request: Request, exc: RequestError) -> JSONResponse:
        return error_response(exc.status, exc.field, exc.message)

    @app.exception_handler(FieldError)
    async def _fielderror_response(request: Request, exc: FieldError) -> JSONResponse:
        return error_response(422, exc.field, exc.message)

    @app.exception_handler(HanformerError)
    async def _usererror_response(request: Request, exc: HanformerError) -> JSONResponse:
        return error_response(422, None, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _httperror_response(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, None, str(exc.detail))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("error while serving %s", request.url.path)
        return error_response(500, None, f"internal error: {type(exc).__name__}: {exc}")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/info")
    async def info() -> dict[str, Any]:
        return engine.info()

    def answer(content: dict[str, Any]) -> Response:
        return json_answer(content, cfg.max_response_bytes)

    @app.post("/api/tokenize")
    async def tokenize(request: Request) -> Response:
        req = await parse_body(request, models["texts"])
        check_pairs(req)
        return answer({"results": await run_in_threadpool(engine.tokenize, req.texts, req.pairs)})

    @app.post("/api/fill-mask")
    async def fill_mask(request: Request) -> Response:
        req = await parse_body(request, models["fill-mask"])
        return answer({"results": await run_in_threadpool(engine.fill_mask, req.texts, req.top_k)})

    @app.post("/api/embeddings")
    async def embeddings(request: Request) -> Response:
        req = await parse_body(request, models["embeddings"])
        vectors = await run_in_threadpool(engine.embeddings, req.texts, req.pooling, req.normalize)
        return answer({"embeddings": vectors, "dim": len(vectors[0])})

    @app.post("/api/predict")
    async def predict(request: Request) -> Response:
        req = await parse_body(request, models["texts"])
        check_pairs(req)
        results = await run_in_threadpool(engine.predict, req.texts, req.pairs)
        return answer({"task": engine.task, "results": results})

    @app.post("/api/attention")
    async def attention(request: Request) -> Response:
        req = await parse_body(request, models["attention"])
        try:
            return answer(await run_in_threadpool(engine.attention, req.text, req.pair, req.packed))
        except FieldError:
            raise
        except HanformerError as e:
            raise RequestError(422, "text", str(e)) from None

    # A generation holds its slot until its thread ends (not when the response ends), so the
    # count is of threads actually busy.
    generation_slots = threading.BoundedSemaphore(cfg.max_generations)

    @app.post("/api/generate")
    async def generate(request: Request) -> StreamingResponse:
        req = await parse_body(request, models["generate"])
        config = engine.generation_config(req.model_dump(exclude={"prompt"}, exclude_none=True))
        if not generation_slots.acquire(blocking=False):
            raise RequestError(503, None, f"{cfg.max_generations} generations are running already (the "
                                          "server's max_generations); try again when one has ended")
        started = time.perf_counter()
        try:
            worker = WorkerStream(_generation_work(engine, req.prompt, config, generation_slots.release),
                                  name="hanformer-generate").start()
        except BaseException:
            generation_slots.release()
            raise
        try:
            first = await worker.next()
        except BaseException:
            worker.cancel()
            raise
        if first[0] == "error":
            raise first[1]  # the prompt does not fit, or the like: a 4xx naming the field, before any event
        return EventStream(_generation_events(first, worker, config, started), on_close=worker.cancel)

    @app.post("/api/translate")
    async def translate(request: Request) -> Response:
        req = await parse_body(request, models["translate"])
        service = engine.translator("texts")
        decoding = Decoding(req.num_beams, req.max_new_tokens, req.length_penalty)
        config = service.translate_config(decoding)
        started = time.perf_counter()
        results = await run_in_threadpool(service.translate, req.texts, config)
        return answer({"results": results, "strategy": decoding.strategy, "num_beams": config.num_beams,
                       "max_new_tokens": config.max_length, "length_penalty": config.length_penalty,
                       "seconds": round(time.perf_counter() - started, 4)})

    @app.post("/api/translate/attention")
    async def translation_attention(request: Request) -> Response:
        req = await parse_body(request, models["translation-attention"])
        service = engine.translator("text")
        return answer(await run_in_threadpool(service.cross_attention, req.text, req.token_ids))

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    # The page and `hanformer attention` files share the attention views' JS and CSS.
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount("/assets", StaticFiles(directory=ASSETS_DIR), name="assets")
    return app


def _generation_work(engine: InferenceEngine, prompt: str, config: GenerationConfig,
                     release: Callable[[], None]) -> Callable[[Callable[[Any], None], threading.Event], Any]:
    def work(emit: Callable[[Any], None], cancelled: threading.Event) -> Any:
        pieces = 0

        def on_text(text: str) -> None:
            nonlocal pieces
            pieces += 1
            emit(text)

        try:
            return engine.generate(prompt, config, on_text, cancelled)
        except GenerationCancelled:
            log.info("generation stopped after %d pieces of text: the client went away", pieces)
            raise
        finally:
            release()

    return work


async def _generation_events(first: tuple[str, Any], worker: WorkerStream, config: GenerationConfig,
                             started: float) -> AsyncIterator[str]:
    """`token` events ({"text": new piece}) in order, then one `done` event with the whole text
    and why it ended, or an `error` event if generation failed part-way."""
    kind, value = first
    while True:
        if kind == "item":
            yield sse("token", {"text": value})
        elif kind == "done":
            yield sse("done", {"text": value.text, "finish_reason": value.finish_reason,
                               "prompt_tokens": value.prompt_tokens, "generated_tokens": len(value.token_ids),
                               "strategy": config.strategy, "seconds": round(time.perf_counter() - started, 4)})
            return
        else:
            if isinstance(value, GenerationCancelled):
                return
            payload: dict[str, str | None]
            if isinstance(value, FieldError):
                payload = {"error": value.message, "field": value.field}
            elif isinstance(value, HanformerError):
                payload = {"error": str(value), "field": None}
            else:
                log.error("error while generating", exc_info=value)
                payload = {"error": f"internal error: {type(value).__name__}: {value}", "field": None}
            yield sse("error", payload)
            return
        kind, value = await worker.next()


def serve(model_dir: str | Path, config: ServeConfig | None = None) -> None:
    """Run the app on uvicorn until Ctrl-C (binds 127.0.0.1 unless `config.host` says otherwise).

    We bind the socket ourselves so that `port=0` works (the OS picks a free port) and the
    printed address is the real one.
    """
    import socket

    import uvicorn

    cfg = config or ServeConfig()
    app = create_app(model_dir, cfg)
    family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((cfg.host, cfg.port))
        # Listen before the address is printed: a client that connects at once then waits in the
        # backlog until uvicorn accepts, instead of being refused while uvicorn starts up.
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise HanformerError(f"cannot listen on {cfg.host}:{cfg.port}: {e.strerror}; "
                             "choose another --port or --host") from None
    port = sock.getsockname()[1]
    if cfg.host not in LOOPBACK_NAMES:
        log.warning("listening on %s: anyone who can reach this address can use the model", cfg.host)
    if cfg.host in WILDCARD_ADDRESSES and not cfg.allowed_hosts:
        log.warning("listening on every interface: only requests for 127.0.0.1, localhost and [::1] are "
                    "served; give the names others use to reach it with --allowed-hosts")
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    print(f"hanformer: serving {Path(model_dir).name} ({app.state.engine.task}) at http://{host}:{port}/",
          flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level=cfg.log_level))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn shuts down gracefully on Ctrl-C, then re-raises it; stopping is what was asked.
        pass
    print("hanformer: server stopped", flush=True)

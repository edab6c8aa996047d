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

Every bad request gets a 4xx JSON answer `{"error": "...", "field": "..."}` that names the field;
inference runs in a thread pool, so one slow request does not hold up the others. Only requests for
this server's own host names and POST bodies sent as JSON are served (`security.py`), and every
answer stays within the configured limits (texts, masks, candidates, tokens, bytes).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import typing
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, create_model
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hanformer.errors import HanformerError
from hanformer.serving.config import ServeConfig
from hanformer.serving.engine import (
    FieldError,
    GenerationCancelled,
    InferenceEngine,
    answer_too_large,
)
from hanformer.serving.hosts import LOOPBACK_NAMES, WILDCARD_ADDRESSES
from hanformer.serving.security import HostRules, RequestGuard
from hanformer.serving.streaming import EventStream, WorkerStream, sse
from hanformer.visualization.html import ASSETS_DIR

if TYPE_CHECKING:
    from hanformer.generation.config import GenerationConfig

STATIC_DIR = Path(__file__).parent / "static"
log = logging.getLogger("hanformer.serving")

# The `GenerationConfig` settings a generation request may set; token ids, the cache and several
# sequences per prompt stay the server's business (the stream carries one text).
GENERATE_SETTINGS = ("max_new_tokens", "do_sample", "num_beams", "temperature", "top_k", "top_p",
                     "repetition_penalty", "no_repeat_ngram_size", "length_penalty", "early_stopping",
                     "stop_strings", "seed", "prepend_bos", "long_prompt")


class RequestError(Exception):
    """A request we refuse: HTTP status, the field at fault, a message for the user."""

    def __init__(self, status: int, field: str | None, message: str) -> None:
        super().__init__(message)
        self.status, self.field, self.message = status, field, message


def _error(status: int, field: str | None, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status)


def json_answer(content: dict[str, Any], max_bytes: int) -> Response:
    """`content` as JSON (as `JSONResponse` writes it), refused with 422 when over `max_bytes`.

    The engine refuses the answers it can foresee to be large before computing them; this is
    the final word for every endpoint."""
    body = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    if len(body) > max_bytes:
        raise RequestError(422, "body", answer_too_large(len(body), max_bytes, "send fewer or shorter texts"))
    return Response(body, media_type="application/json")


# ---- request bodies -------------------------------------------------------------------------

def request_models(cfg: ServeConfig) -> dict[str, type[BaseModel]]:
    """Pydantic models with this server's limits; strict: no silent type coercion, no unknown keys."""
    Text = Annotated[str, StringConstraints(min_length=1, max_length=cfg.max_chars)]
    Texts = Annotated[list[Text], Field(min_length=1, max_length=cfg.max_batch)]

    class Strict(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)

    class TextsRequest(Strict):
        texts: Texts
        pairs: Texts | None = None

    class FillMaskRequest(Strict):
        texts: Texts
        top_k: Annotated[int, Field(ge=1, le=cfg.max_top_k)] = cfg.top_k

    class EmbeddingsRequest(Strict):
        texts: Texts
        pooling: Literal["mean", "cls"] = "mean"
        normalize: bool = True

    class AttentionRequest(Strict):
        text: Text
        pair: Text | None = None
        packed: bool = False

    return {"texts": TextsRequest, "fill-mask": FillMaskRequest, "embeddings": EmbeddingsRequest,
            "attention": AttentionRequest, "generate": generate_request_model(cfg, Strict)}


def generate_request_model(cfg: ServeConfig, base: type[BaseModel]) -> type[BaseModel]:
    """The body of /api/generate: a prompt and any of `GENERATE_SETTINGS`.

    Types come from `GenerationConfig` itself and values are checked by its `validate` (in the
    engine), so the rules live in one place; only this server's limits are added here.
    """
    from hanformer.generation.config import GenerationConfig

    hints = typing.get_type_hints(GenerationConfig)
    limits: dict[str, Any] = {
        "max_new_tokens": Annotated[int, Field(le=cfg.max_new_tokens)],
        "num_beams": Annotated[int, Field(le=cfg.max_beams)],
        "stop_strings": Annotated[list[Annotated[str, StringConstraints(max_length=100)]], Field(max_length=8)],
        "seed": Annotated[int, Field(ge=0, le=2**63 - 1)],  # what torch.Generator accepts
    }
    fields: dict[str, Any] = {name: (limits.get(name, hints[name]) | None, None) for name in GENERATE_SETTINGS}
    prompt = Annotated[str, StringConstraints(max_length=cfg.max_chars)]
    return create_model("GenerateRequest", __base__=base, prompt=(prompt, ...), **fields)


# The server setting behind each request limit, so a refusal names the setting and its flag.
LIMIT_SETTINGS = {("texts", "too_long"): "max_batch", ("pairs", "too_long"): "max_batch",
                  ("texts", "string_too_long"): "max_chars", ("pairs", "string_too_long"): "max_chars",
                  ("text", "string_too_long"): "max_chars", ("pair", "string_too_long"): "max_chars",
                  ("prompt", "string_too_long"): "max_chars", ("top_k", "less_than_equal"): "max_top_k",
                  ("max_new_tokens", "less_than_equal"): "max_new_tokens",
                  ("num_beams", "less_than_equal"): "max_beams"}


def _limit_note(field: str, error_type: str, cfg: ServeConfig) -> str:
    setting = LIMIT_SETTINGS.get((field, error_type))
    if setting is None:
        return ""
    return f" (the server's {setting} = {getattr(cfg, setting)}; `hanformer serve --{setting.replace('_', '-')}`)"


def _field_name(loc: tuple[Any, ...]) -> str:
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


async def parse_body(request: Request, model: type[BaseModel]) -> Any:
    body = await request.body()
    if not body.strip():
        raise RequestError(400, "body", "the request body is empty; send a JSON object")
    try:
        return model.model_validate_json(body)
    except ValidationError as e:
        # An unknown key is most often a typo of a required one: name it before "field required".
        first = min(e.errors(), key=lambda err: err["type"] != "extra_forbidden")
        if first["type"] == "json_invalid":
            raise RequestError(400, "body", f"invalid JSON: {first['ctx'].get('error', first['msg'])}") from None
        # Past the field name, a string in `loc` is a member of a union type ("bool" of
        # `bool | Literal["never"]`), not a field: the request bodies are flat.
        field = _field_name(tuple(part for i, part in enumerate(first["loc"]) if i == 0 or isinstance(part, int)))
        message = first["msg"] + _limit_note(field.split("[")[0], first["type"], request.app.state.config)
        if first["type"] == "extra_forbidden":
            message = f"unknown field; expected one of {', '.join(model.model_fields)}"
        elif first["type"] == "model_type":
            message = "the body must be a JSON object"
        raise RequestError(422, field, f"{field}: {message}") from None


def _check_pairs(req: Any) -> None:
    if req.pairs is not None and len(req.pairs) != len(req.texts):
        raise RequestError(422, "pairs", f"pairs: {len(req.pairs)} pairs for {len(req.texts)} texts; "
                                         "give one pair per text")


# ---- body size limit -----------------------------------------------------------------------

class BodyLimit:
    """Refuse bodies over `max_bytes` with 413 before reading them whole (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = _error(413, "body", f"the request body is larger than {self.max_bytes} bytes; "
                                       "send fewer or shorter texts")
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


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
    from hanformer import __version__

    app = FastAPI(title="hanformer", version=__version__, docs_url=None, redoc_url=None,
                  description="Try a hanformer checkpoint: tokenize, fill-mask, embeddings, predict, attention, generate.")
    app.state.engine = engine
    app.state.config = cfg
    app.add_middleware(BodyLimit, max_bytes=cfg.max_body_bytes)
    # Added last, so it runs first: a foreign page's request is refused before anything is read.
    app.add_middleware(RequestGuard, rules=HostRules(cfg.host, cfg.allowed_hosts))

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError) -> JSONResponse:
        return _error(exc.status, exc.field, exc.message)

    @app.exception_handler(FieldError)
    async def _field_error(request: Request, exc: FieldError) -> JSONResponse:
        return _error(422, exc.field, exc.message)

    @app.exception_handler(HanformerError)
    async def _user_error(request: Request, exc: HanformerError) -> JSONResponse:
        return _error(422, None, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, None, str(exc.detail))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("error while serving %s", request.url.path)
        return _error(500, None, f"internal error: {type(exc).__name__}: {exc}")

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
        _check_pairs(req)
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
        _check_pairs(req)
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

"""What the web app accepts: request bodies checked against the server's limits (strict pydantic
models), refusals that name the field and the limit behind them, and the body size limit."""

from __future__ import annotations

import typing
from typing import Annotated, Any, Literal

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, create_model
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hanformer.generation.config import GenerationConfig
from hanformer.serving.config import ServeConfig

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


def error_response(status: int, field: str | None, message: str) -> JSONResponse:
    """The one shape of every refusal: `{"error": message, "field": field}`."""
    return JSONResponse({"error": message, "field": field}, status_code=status)


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

    # Lines to translate: a blank one is allowed (it translates to an empty line, so that
    # translation N is always line N's).
    Line = Annotated[str, StringConstraints(max_length=cfg.max_chars)]

    class TranslateRequest(Strict):
        texts: Annotated[list[Line], Field(min_length=1, max_length=cfg.max_batch)]
        num_beams: Annotated[int, Field(ge=1, le=cfg.max_beams)] = min(4, cfg.max_beams)  # 1 = greedy
        max_new_tokens: Annotated[int, Field(ge=1, le=cfg.max_new_tokens)] | None = None
        length_penalty: Annotated[float, Field(allow_inf_nan=False)] = 1.0

    class TranslationAttentionRequest(Strict):
        text: Text
        token_ids: Annotated[list[int], Field(min_length=1, max_length=cfg.max_new_tokens)]

    return {"texts": TextsRequest, "fill-mask": FillMaskRequest, "embeddings": EmbeddingsRequest,
            "attention": AttentionRequest, "generate": generate_request_model(cfg, Strict),
            "translate": TranslateRequest, "translation-attention": TranslationAttentionRequest}


def generate_request_model(cfg: ServeConfig, base: type[BaseModel]) -> type[BaseModel]:
    """The body of /api/generate: a prompt and any of `GENERATE_SETTINGS`.

    Types come from `GenerationConfig` itself and values are checked by its `validate` (in the
    engine), so the rules live in one place; only this server's limits are added here.
    """

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
                  ("num_beams", "less_than_equal"): "max_beams",
                  ("token_ids", "too_long"): "max_new_tokens"}


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


def check_pairs(req: Any) -> None:
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
        response = error_response(413, "body", f"the request body is larger than {self.max_bytes} bytes; "
                                       "send fewer or shorter texts")
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass

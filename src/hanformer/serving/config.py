"""Settings of the local web app (`hanformer serve`)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from hanformer.errors import ConfigError
from hanformer.serving.hosts import check_allowed_hosts
from hanformer.utils.config import setting


@dataclasses.dataclass
class ServeConfig:
    host: str = setting("127.0.0.1", "address to listen on; the default is reachable from this computer "
                                     "only (use 0.0.0.0 to open it to the network, at your own risk)")
    port: int = setting(8000, "TCP port to listen on (0 picks a free one)")
    allowed_hosts: list[str] = setting([], "more names the server answers to (NAME: any port, NAME:PORT: that "
                                           "port), besides 127.0.0.1, localhost and [::1] with its port and "
                                           "the --host address; any other Host header gets 403, which keeps "
                                           "web pages from reaching it through DNS rebinding. '*' answers to "
                                           "any name (only behind a proxy you trust)")
    max_chars: int = setting(2000, "longest text accepted in one field, in characters")
    max_batch: int = setting(32, "most texts accepted in one request")
    max_tokens: int = setting(512, "longer inputs are truncated to this many tokens "
                                    "(never more than the model's max_position_embeddings)")
    attention_max_tokens: int = setting(128, "longest input the attention endpoint and views accept, in tokens "
                                              "(the data grows with the square of the length)")
    top_k: int = setting(5, "candidates returned for each [MASK] by default")
    max_top_k: int = setting(50, "most candidates a fill-mask request may ask for")
    max_masks: int = setting(8, "most [MASK] tokens in one fill-mask text")
    max_response_bytes: int = setting(8_000_000, "largest answer sent, in bytes of JSON; a request whose answer "
                                                 "would be larger gets 422 before the work is done where it can "
                                                 "be foreseen (fewer texts, masks or candidates fix it)")
    max_body_bytes: int = setting(1_000_000, "largest request body accepted, in bytes")
    max_new_tokens: int = setting(256, "most tokens one generation or translation request may ask for (causal "
                                       "LM and translation checkpoints)")
    max_beams: int = setting(8, "widest beam search one generation or translation request may ask for (causal LM "
                                "and translation checkpoints)")
    max_generations: int = setting(4, "most generations running at once (each keeps a thread busy); "
                                      "more get 503 until one ends")
    torch_threads: int | None = setting(None, "CPU threads for each forward pass (default: PyTorch's choice)")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = setting(
        "info", "how much uvicorn logs (every request at info)")

    def validate(self) -> None:
        for name in ("max_chars", "max_batch", "max_tokens", "attention_max_tokens", "top_k",
                     "max_top_k", "max_masks", "max_body_bytes", "max_response_bytes",
                     "max_new_tokens", "max_beams", "max_generations"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535, got {self.port}")
        if self.top_k > self.max_top_k:
            raise ConfigError(f"top_k ({self.top_k}) is more than max_top_k ({self.max_top_k})")
        problem = check_allowed_hosts(self.allowed_hosts)
        if problem:
            raise ConfigError(problem)
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ConfigError(f"torch_threads must be at least 1, got {self.torch_threads}")

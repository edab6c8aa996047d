"""Server-sent events fed by work running in a worker thread.

Generation is a blocking loop of forward passes; it runs in its own thread so the event loop
keeps serving other requests. What the thread produces crosses to the event loop through an
`asyncio.Queue` (`loop.call_soon_threadsafe`), in order. When the response ends for any reason
(finished, client disconnected, server shutting down) the thread is told to stop.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

# work(emit, cancelled) -> result: calls emit(item) for every partial result, checks `cancelled`.
Work = Callable[[Callable[[Any], None], threading.Event], Any]


def sse(event: str, data: dict[str, Any]) -> str:
    """One server-sent event: a name and a JSON payload (one line, so one `data:` field)."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class WorkerStream:
    """Runs `work` in a daemon thread; `await next()` returns ("item", x) for every `emit(x)`, then
    ("done", result) or ("error", exception)."""

    def __init__(self, work: Work, name: str = "hanformer-worker") -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.cancelled = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(work,), name=name, daemon=True)

    def start(self) -> WorkerStream:
        self._thread.start()
        return self

    def cancel(self) -> None:
        self.cancelled.set()

    async def next(self) -> tuple[str, Any]:
        return await self._queue.get()

    def _put(self, kind: str, value: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (kind, value))
        except RuntimeError:  # the event loop is closed: nobody is listening any more
            self.cancelled.set()

    def _run(self, work: Work) -> None:
        try:
            result = work(lambda item: self._put("item", item), self.cancelled)
        except BaseException as e:  # handed to the event loop, which decides what the client sees
            self._put("error", e)
        else:
            self._put("done", result)


class EventStream(StreamingResponse):
    """A `text/event-stream` response that calls `on_close` however it ends.

    Starlette stops sending when the client disconnects; `on_close` is where the producer
    learns it should stop too.
    """

    media_type = "text/event-stream"

    def __init__(self, events: AsyncIterator[str], on_close: Callable[[], None]) -> None:
        # no-cache: each event is new; X-Accel-Buffering: a proxy in front must not hold events back.
        super().__init__(events, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()

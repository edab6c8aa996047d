"""A real uvicorn server on a free loopback port: in a thread of the test process, or as its own
`hanformer serve` process."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve `app` on 127.0.0.1:<free port> over real TCP; yields the base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextlib.contextmanager
def serve_process(model_dir: Any, *args: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """`hanformer serve --model DIR --port 0 ARGS` in its own process, as a user runs it; yields
    the base URL (from the line it prints) and the process, and stops it with Ctrl-C."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "hanformer.cli.main", "serve", "--model", str(model_dir),
                             "--port", "0", "--log-level", "warning", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        found = re.search(r" at (http://\S+?)/?$", line.strip())
        if not found:
            raise RuntimeError(f"hanformer serve did not start: {line}{proc.stderr.read() if proc.stderr else ''}")
        yield found.group(1), proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

"""`hanformer serve` as a user runs it: a separate process on a loopback port, stopped with Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import httpx
import pytest

from _tiny_checkpoints import make_checkpoint, make_tokenizer


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tokenizer = make_tokenizer(tmp_path_factory.mktemp("tok"))
    return make_checkpoint(tmp_path_factory.mktemp("cls"), tokenizer, "BertForSequenceClassification", ["no", "yes"])


def hanformer(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "hanformer.cli.main", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


@pytest.mark.slow
def test_serve_binds_loopback_answers_and_stops_on_ctrl_c(model_dir):
    proc = hanformer("serve", "--model", str(model_dir), "--port", "0", "--log-level", "warning")
    try:
        line = proc.stdout.readline()
        m = re.search(r"serving .* \(classification\) at (http://127\.0\.0\.1:(\d+)/)", line)
        assert m, line + proc.stderr.read()
        url = m.group(1)
        assert httpx.get(url + "health", timeout=10).json() == {"status": "ok"}
        r = httpx.post(url + "api/predict", json={"texts": ["좋아요"]}, timeout=30)
        assert r.status_code == 200 and r.json()["results"][0]["label"] in ("no", "yes")
        assert "<title>hanformer</title>" in httpx.get(url, timeout=10).text
        assert "HanformerAttention" in httpx.get(url + "assets/attention.js", timeout=10).text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, proc.stderr.read()


def test_serve_refuses_bad_settings_in_one_line(model_dir, tmp_path, capsys):
    from hanformer.cli.main import main

    assert main(["serve", "--model", str(model_dir), "--max-chars", "0"]) == 2
    assert "hanformer: error: max_chars must be at least 1" in capsys.readouterr().err
    assert main(["serve", "--model", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hanformer: error:") and "missing" in err and len(err.splitlines()) == 1

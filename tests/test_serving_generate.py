"""Text generation in the web app: /api/generate streams server-sent events from a real uvicorn server
serving a tiny random GPT checkpoint (saved with the real classes)."""

from __future__ import annotations

import json
import logging
import threading
import time

import httpx
import pytest
import torch

from _live_server import live_server
from _tiny_checkpoints import make_checkpoint, make_gpt_checkpoint, make_tokenizer
from hanformer.generation.api import generate
from hanformer.models.rnn.config import RNNConfig
from hanformer.models.rnn.model import RNNLanguageModel
from hanformer.serving.app import create_app
from hanformer.serving.config import ServeConfig
from hanformer.serving.engine import InferenceEngine

PROMPT = "서울은 대한민국의"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def gpt_dir(tmp_path_factory, tokenizer):
    return make_gpt_checkpoint(tmp_path_factory.mktemp("gpt"), tokenizer, n_positions=64)


@pytest.fixture(scope="module")
def server(gpt_dir):
    app = create_app(gpt_dir, ServeConfig(max_chars=300, max_new_tokens=40, max_beams=4))
    with live_server(app) as url:
        yield url, app


def stream(url: str, body: dict, timeout: float = 60) -> tuple[httpx.Response, list[tuple[str, dict]]]:
    """POST /api/generate and parse the server-sent events as they arrive: [(event, data), ...]."""
    events = []
    with httpx.stream("POST", url + "/api/generate", json=body, timeout=timeout) as r:
        if r.status_code != 200:
            r.read()
            return r, events
        name, data = None, []
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                data.append(line[len("data: "):])
            elif line == "" and name is not None:
                events.append((name, json.loads("\n".join(data))))
                name, data = None, []
    return r, events


def test_info_says_causal_lm_and_which_endpoints_apply(server, tokenizer, tmp_path):
    url, _ = server
    info = httpx.get(url + "/info").json()
    assert info["task"] == "text-generation" and info["causal_lm"] is True
    assert info["architecture"] == "GPTForCausalLM" and info["config"]["n_layer"] == 2
    assert info["endpoints"] == ["/api/tokenize", "/api/generate"]
    assert info["limits"]["max_new_tokens"] == 40 and info["limits"]["max_tokens"] == 64
    # Encoder-only endpoints say they do not apply, naming the field.
    r = httpx.post(url + "/api/attention", json={"text": PROMPT})
    assert r.status_code == 422 and r.json()["field"] == "text" and "/api/generate" in r.json()["error"]
    assert httpx.post(url + "/api/embeddings", json={"texts": [PROMPT]}).json()["field"] == "texts"
    assert httpx.post(url + "/api/tokenize", json={"texts": [PROMPT]}).status_code == 200

    # A BERT checkpoint: no generation, and /info says so.
    bert = make_checkpoint(tmp_path / "bert", tokenizer, "BertForMaskedLM")
    with live_server(create_app(bert)) as bert_url:
        info = httpx.get(bert_url + "/info").json()
        assert info["causal_lm"] is False and "/api/generate" not in info["endpoints"]
        assert "/api/fill-mask" in info["endpoints"]
        r = httpx.post(bert_url + "/api/generate", json={"prompt": PROMPT})
        assert r.status_code == 422 and r.json()["field"] == "prompt"
        assert "not a causal language model" in r.json()["error"]

    # GPT without its language-model head: a one-line error at start, not a server that fails later.
    from hanformer.errors import CheckpointError
    from hanformer.models.gpt.config import GPTConfig
    from hanformer.models.gpt.model import GPTModel

    GPTModel(GPTConfig.preset("tiny", vocab_size=tokenizer.vocab_size, n_positions=64, n_embd=32,
                              n_head=2)).save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    with pytest.raises(CheckpointError, match="GPTModel checkpoint .* has nothing to serve"):
        create_app(tmp_path / "base")


@pytest.mark.parametrize("settings", [
    {"max_new_tokens": 12},
    {"max_new_tokens": 12, "repetition_penalty": 1.5, "no_repeat_ngram_size": 2},
])
def test_greedy_stream_arrives_in_order_and_equals_generate(server, gpt_dir, settings):
    url, _ = server
    r, events = stream(url, {"prompt": PROMPT, **settings})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    names = [name for name, _ in events]
    assert names[-1] == "done" and set(names[:-1]) == {"token"} and len(names) >= 4
    pieces = "".join(data["text"] for name, data in events[:-1])
    done = events[-1][1]
    expected = generate(str(gpt_dir), PROMPT, **settings)[0]
    assert pieces == done["text"] == expected.text and expected.text
    assert done["finish_reason"] == expected.finish_reason
    assert done["generated_tokens"] == len(expected.token_ids) and done["prompt_tokens"] == expected.prompt_tokens
    assert done["strategy"] == "greedy"


def test_sampling_with_a_seed_and_beam_search_equal_generate(server, gpt_dir):
    url, _ = server
    sampling = {"max_new_tokens": 15, "do_sample": True, "temperature": 0.9, "top_p": 0.9, "top_k": 20, "seed": 7}
    _, events = stream(url, {"prompt": PROMPT, **sampling})
    expected = generate(str(gpt_dir), PROMPT, **sampling)[0]
    assert "".join(d["text"] for n, d in events if n == "token") == events[-1][1]["text"] == expected.text
    assert events[-1][1]["strategy"] == "sample"
    # Beam search knows its text only at the end: one piece, then done.
    beam = {"max_new_tokens": 8, "num_beams": 3, "length_penalty": 0.8}
    _, events = stream(url, {"prompt": PROMPT, **beam})
    expected = generate(str(gpt_dir), PROMPT, **beam)[0]
    assert [n for n, _ in events] == ["token", "done"]
    assert events[0][1]["text"] == events[1][1]["text"] == expected.text
    # A stop string ends the text before it; it is never streamed.
    stop = expected.text.strip()[:1]
    _, events = stream(url, {"prompt": PROMPT, **beam, "stop_strings": [stop]})
    assert events[-1][1]["finish_reason"] == "stop_string" and stop not in events[-1][1]["text"]


@pytest.mark.parametrize("body, field, message", [
    ({"prompt": PROMPT, "temperature": 0, "do_sample": True}, "temperature", "must be > 0"),
    ({"prompt": PROMPT, "top_p": 1.5}, "top_p", "must be in (0, 1]"),
    ({"prompt": PROMPT, "do_sample": True, "num_beams": 2}, "num_beams", "beam search with sampling"),
    ({"prompt": PROMPT, "max_new_tokens": 0}, "max_new_tokens", "at least 1"),
    ({"prompt": PROMPT, "max_new_tokens": 41}, "max_new_tokens", "less than or equal to 40"),
    ({"prompt": PROMPT, "num_beams": 5}, "num_beams", "less than or equal to 4"),
    ({"prompt": PROMPT, "temperature": "hot"}, "temperature", "valid number"),
    ({"prompt": PROMPT, "early_stopping": "sometimes"}, "early_stopping", "early_stopping"),
    ({"prompt": PROMPT, "stop_strings": [""]}, "stop_strings", "empty string"),
    ({"prompt": PROMPT, "seed": -1}, "seed", "greater than or equal to 0"),
    ({"prompt": PROMPT, "temprature": 0.5}, "temprature", "unknown field"),
    ({"prompt": PROMPT, "num_return_sequences": 2}, "num_return_sequences", "unknown field"),
    ({"max_new_tokens": 5}, "prompt", "Field required"),
    ({"prompt": "가" * 301}, "prompt", "at most 300 characters"),
    ({"prompt": " ".join(["도시"] * 50), "long_prompt": "error", "max_new_tokens": 30}, "prompt",
     "only 34 fit (context window 64 - max_new_tokens 30)"),
])
def test_bad_settings_get_4xx_naming_the_field(server, body, field, message):
    url, _ = server
    r = httpx.post(url + "/api/generate", json=body, timeout=30)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/json"
    err = r.json()
    assert err["field"] == field and message in err["error"]


def test_invalid_json_and_empty_prompt(server, gpt_dir):
    url, _ = server
    r = httpx.post(url + "/api/generate", content=b'{"prompt": ', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["field"] == "body"
    # An empty prompt starts from the model's document-start token, as `generate` does.
    _, events = stream(url, {"prompt": "", "max_new_tokens": 5})
    assert events[-1][1]["prompt_tokens"] == 1
    assert events[-1][1]["text"] == generate(str(gpt_dir), "", max_new_tokens=5)[0].text


def workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "hanformer-generate"]


def test_client_disconnect_stops_generation_and_the_server_goes_on(server, gpt_dir, caplog):
    url, app = server
    model = app.state.engine.model
    steps = []

    def slow(module, args, output):  # ~15 ms a token: 40 tokens would take 0.6 s
        steps.append(1)
        time.sleep(0.015)

    hook = model.register_forward_hook(slow)
    try:
        with caplog.at_level(logging.INFO, logger="hanformer.serving"):
            with httpx.stream("POST", url + "/api/generate", json={"prompt": PROMPT, "max_new_tokens": 40},
                              timeout=30) as r:
                assert r.status_code == 200
                lines = r.iter_lines()
                assert next(lines) == "event: token"
            # Closed after the first event: the worker stops at its next piece of text.
            deadline = time.monotonic() + 10
            while (workers() or "the client went away" not in caplog.text) and time.monotonic() < deadline:
                time.sleep(0.02)
        assert "the client went away" in caplog.text and not workers()
        assert len(steps) < 40  # stopped early, not run to max_new_tokens
    finally:
        hook.remove()
    # The next request is served normally.
    _, events = stream(url, {"prompt": PROMPT, "max_new_tokens": 6})
    assert events[-1][0] == "done"
    assert events[-1][1]["text"] == generate(str(gpt_dir), PROMPT, max_new_tokens=6)[0].text
    assert httpx.get(url + "/health").json() == {"status": "ok"}


def test_generations_over_the_limit_get_503_until_one_ends(gpt_dir):
    app = create_app(gpt_dir, ServeConfig(max_generations=1))
    hook = app.state.engine.model.register_forward_hook(lambda *_: time.sleep(0.01))
    try:
        with live_server(app) as url:
            with httpx.stream("POST", url + "/api/generate", json={"prompt": PROMPT, "max_new_tokens": 20},
                              timeout=30) as running:
                lines = running.iter_lines()
                assert next(lines) == "event: token"
                r = httpx.post(url + "/api/generate", json={"prompt": PROMPT}, timeout=30)
                assert r.status_code == 503 and "max_generations" in r.json()["error"]
                assert httpx.get(url + "/health").status_code == 200  # other requests still served
                assert "event: done" in list(lines)
            deadline = time.monotonic() + 10
            while workers() and time.monotonic() < deadline:
                time.sleep(0.02)
            _, events = stream(url, {"prompt": PROMPT, "max_new_tokens": 3})
            assert events[-1][0] == "done"
    finally:
        hook.remove()


def test_concurrent_streams_do_not_mix(server, gpt_dir):
    url, _ = server
    prompts = ["서울은", "이 영화 정말", "The cat sat"]
    results: dict[str, str] = {}

    def run(prompt: str) -> None:
        _, events = stream(url, {"prompt": prompt, "max_new_tokens": 10})
        results[prompt] = "".join(d["text"] for n, d in events if n == "token")

    threads = [threading.Thread(target=run, args=(p,)) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for p in prompts:
        assert results[p] == generate(str(gpt_dir), p, max_new_tokens=10)[0].text


def test_an_rnn_language_model_folder_is_served_for_generation(tmp_path, tokenizer):
    """An LSTM folder from `hanformer rnn train` serves /api/generate like a GPT: the same text
    as `generate`, streamed, its context limited only by the server's max_tokens."""
    torch.manual_seed(0)
    model = RNNLanguageModel(RNNConfig(vocab_size=tokenizer.vocab_size, embedding_size=16, hidden_size=16,
                                       num_layers=1, separator_id=tokenizer.sep_token_id))
    folder = tmp_path / "lstm"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    engine = InferenceEngine(folder, ServeConfig(max_tokens=200, max_new_tokens=12))
    assert engine.causal_lm and engine.endpoints() == ["/api/tokenize", "/api/generate"]
    assert engine.info()["architecture"] == "RNNLanguageModel" and engine.max_tokens == 200
    pieces: list[str] = []
    served = engine.generate(PROMPT, engine.generation_config({}), pieces.append)
    expected = generate(str(folder), PROMPT, max_new_tokens=12)[0]
    assert "".join(pieces) == served.text == expected.text and expected.text
    assert served.token_ids == expected.token_ids

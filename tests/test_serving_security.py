"""What web pages and oversized requests can do to the local server: real servers on 127.0.0.1.

A page on another site can send simple (no-preflight) POSTs to 127.0.0.1 and, through DNS
rebinding, read the answers under its own host name; a small request could ask for a huge answer.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from _live_server import live_server, serve_process
from _tiny_checkpoints import make_checkpoint, make_gpt_checkpoint, make_tokenizer
from hanformer.cli.main import main
from hanformer.serving.app import create_app
from hanformer.serving.config import ServeConfig

LABELS = ["no", "yes"]
BODY = '{"texts": ["좋아요"]}'


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory, tokenizer):
    return make_checkpoint(tmp_path_factory.mktemp("cls"), tokenizer, "BertForSequenceClassification", LABELS)


@pytest.fixture(scope="module")
def fill_mask_dir(tmp_path_factory, tokenizer):
    return make_checkpoint(tmp_path_factory.mktemp("pre"), tokenizer, "BertForPreTraining")


@pytest.fixture(scope="module")
def server(classifier_dir):
    """A classifier server and a counter of the predictions it ran (a refused request runs none)."""
    app = create_app(classifier_dir)
    engine = app.state.engine
    original = engine.predict
    calls = []

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    engine.predict = counted
    with live_server(app) as url:
        yield url, calls


def port_of(url: str) -> int:
    return urlsplit(url).port


def assert_refused(r: httpx.Response, status: int, field: str, *words: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    err = r.json()
    assert set(err) == {"error", "field"} and err["field"] == field
    assert "\n" not in err["error"]
    for word in words:
        assert word in err["error"], err["error"]


# ---- only JSON POSTs --------------------------------------------------------------------------

@pytest.mark.parametrize("kind, send", [
    ("text/plain", {"content": BODY, "headers": {"content-type": "text/plain"}}),
    ("text/plain;charset=UTF-8", {"content": BODY, "headers": {"content-type": "text/plain;charset=UTF-8"}}),
    ("form", {"data": {"texts": "좋아요"}}),
    ("multipart", {"files": {"texts": ("a.json", BODY.encode(), "application/json")}}),
    ("none", {"content": BODY.encode()}),
])
def test_posts_that_are_not_json_are_refused_before_any_work(server, kind, send):
    """The requests a page on any site may send without a CORS preflight get 415."""
    url, calls = server
    before = len(calls)
    r = httpx.post(url + "/api/predict", timeout=30, **send)
    assert_refused(r, 415, "content-type", "Content-Type: application/json")
    assert len(calls) == before  # the model never ran


def test_json_with_a_charset_is_served(server):
    url, calls = server
    r = httpx.post(url + "/api/predict", content=BODY.encode(), timeout=30,
                   headers={"content-type": "Application/JSON; charset=utf-8"})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["label"] in LABELS


# ---- only this server's host names ------------------------------------------------------------

@pytest.mark.parametrize("method, path", [("GET", "/"), ("GET", "/info"), ("GET", "/assets/attention.js"),
                                          ("POST", "/api/predict")])
def test_a_foreign_host_header_is_refused(server, method, path):
    """DNS rebinding: the attacker's name resolves to 127.0.0.1 but stays in the Host header."""
    url, calls = server
    before = len(calls)
    r = httpx.request(method, url + path, content=BODY.encode(), timeout=30,
                      headers={"host": f"attacker.example:{port_of(url)}", "content-type": "application/json"})
    assert_refused(r, 403, "host", "'attacker.example:", "--allowed-hosts", f"127.0.0.1:{port_of(url)}")
    assert len(calls) == before


def test_loopback_names_are_served_on_the_server_port_only(server):
    url, _ = server
    port = port_of(url)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST.:{port}", f"[::1]:{port}"):
        assert httpx.get(url + "/info", headers={"host": host}).status_code == 200, host
    for host in (f"127.0.0.1:{port + 1}", "127.0.0.1", "localhost.attacker.example", f"127.0.0.1:{port}@x", ""):
        assert_refused(httpx.get(url + "/info", headers={"host": host}), 403, "host")


def test_a_foreign_origin_is_refused_and_no_cors_headers_are_sent(server):
    url, calls = server
    port = port_of(url)
    json_headers = {"content-type": "application/json"}
    before = len(calls)
    r = httpx.post(url + "/api/predict", content=BODY.encode(), headers={**json_headers, "origin": "http://attacker.example"})
    assert_refused(r, 403, "origin", "http://attacker.example")
    r = httpx.post(url + "/api/predict", content=BODY.encode(), headers={**json_headers, "origin": "null"})
    assert_refused(r, 403, "origin")
    assert len(calls) == before
    # The page itself sends its own origin with its POSTs.
    r = httpx.post(url + "/api/predict", content=BODY.encode(), headers={**json_headers, "origin": f"http://127.0.0.1:{port}"})
    assert r.status_code == 200
    assert not [h for h in r.headers if h.lower().startswith("access-control-")]
    # A preflight from the page's own origin still grants nothing cross-site.
    r = httpx.options(url + "/api/predict", headers={"origin": f"http://localhost:{port}",
                                                     "access-control-request-method": "POST",
                                                     "access-control-request-headers": "content-type"})
    assert r.status_code == 405
    assert not [h for h in r.headers if h.lower().startswith("access-control-")]


def test_allowed_hosts_adds_names(classifier_dir):
    app = create_app(classifier_dir, ServeConfig(allowed_hosts=["demo.test", "proxy.test:8443"]))
    with live_server(app) as url:
        for host in ("demo.test", "demo.test:1234", "proxy.test:8443", f"localhost:{port_of(url)}"):
            assert httpx.get(url + "/health", headers={"host": host}).json() == {"status": "ok"}, host
        for host in ("proxy.test", "proxy.test:80", "attacker.example"):
            assert_refused(httpx.get(url + "/health", headers={"host": host}), 403, "host", "demo.test, proxy.test:8443")
    with live_server(create_app(classifier_dir, ServeConfig(allowed_hosts=["*"]))) as url:
        assert httpx.get(url + "/health", headers={"host": "anything.example"}).status_code == 200


def test_cli_allowed_hosts_and_limits(classifier_dir, capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    usage = re.sub(r"\s+", " ", capsys.readouterr().out)
    for flag in ("--allowed-hosts A,B,...", "--max-masks MAX_MASKS", "--max-response-bytes MAX_RESPONSE_BYTES",
                 "--max-top-k", "--max-batch", "--max-new-tokens", "--attention-max-tokens"):
        assert flag in usage, flag
    assert "[default: 8000000]" in usage and "[default: 8]" in usage
    assert main(["serve", "--model", str(classifier_dir), "--allowed-hosts", "demo.test,http://x.test/"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hanformer: error: allowed_hosts entry 'http://x.test/' is not a host name")
    assert len(err.splitlines()) == 1


@pytest.mark.slow
def test_served_process_checks_host_and_content_type(classifier_dir):
    with serve_process(classifier_dir, "--allowed-hosts", "demo.test") as (url, _):
        json_headers = {"content-type": "application/json"}
        assert httpx.post(url + "/api/predict", content=BODY.encode(), headers=json_headers, timeout=30).status_code == 200
        r = httpx.post(url + "/api/predict", content=BODY.encode(), headers={"content-type": "text/plain"}, timeout=30)
        assert_refused(r, 415, "content-type")
        assert_refused(httpx.get(url + "/info", headers={"host": "attacker.example"}, timeout=30), 403, "host")
        assert httpx.get(url + "/info", headers={"host": "demo.test"}, timeout=30).status_code == 200


# ---- bounded answers ----------------------------------------------------------------------------

LIMITS = ServeConfig(max_batch=4, max_masks=3, max_top_k=10, max_response_bytes=50_000)


@pytest.fixture(scope="module")
def bounded(fill_mask_dir):
    with live_server(create_app(fill_mask_dir, LIMITS)) as url:
        yield url


def post(url: str, path: str, body: dict) -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=60)


@pytest.mark.parametrize("path, body, field, words", [
    ("/api/fill-mask", {"texts": ["[MASK] [MASK] [MASK] [MASK] 갔다."]}, "texts[0]",
     ["4 [MASK] tokens, more than max_masks = 3", "--max-masks"]),
    ("/api/fill-mask", {"texts": ["a [MASK]", "b [MASK] [MASK] [MASK] [MASK]"]}, "texts[1]", ["max_masks = 3"]),
    ("/api/fill-mask", {"texts": ["a [MASK]"], "top_k": 11}, "top_k", ["less than or equal to 10", "max_top_k = 10",
                                                                       "--max-top-k"]),
    ("/api/fill-mask", {"texts": ["a [MASK]"] * 5}, "texts", ["at most 4 items", "max_batch = 4", "--max-batch"]),
    ("/api/predict", {"texts": ["a"] * 5}, "texts", ["max_batch = 4"]),
    ("/api/predict", {"texts": ["a"], "pairs": ["b" * 2001]}, "pairs[0]", ["at most 2000 characters",
                                                                          "max_chars = 2000"]),
    ("/api/attention", {"text": "x" * 2001}, "text", ["max_chars = 2000"]),
    # 4 texts x 3 masks x 10 candidates, each repeating its 1,500-byte text: ~190 kB > 50 kB.
    ("/api/fill-mask", {"texts": ["[MASK] [MASK] [MASK] " + "x" * 1480] * 4, "top_k": 10}, "top_k",
     ["more than max_response_bytes = 50000", "--max-response-bytes", "smaller top_k"]),
    # Every weight of 2 layers x (4 heads + mean + rollout) as decimals, over 42 tokens.
    ("/api/attention", {"text": "나는 오늘 학교에 갔다. " * 5}, "text",
     ["more than max_response_bytes = 50000", "packed: true"]),
    # Tokens of 4 long texts and pairs: no foreseeable size, refused once written.
    ("/api/tokenize", {"texts": ["나는 오늘 학교에 갔다. " * 140] * 4, "pairs": ["The cat sat on the mat. " * 80] * 4},
     "body", ["more than max_response_bytes = 50000"]),
])
def test_requests_over_the_limits_get_422_naming_the_limit(bounded, path, body, field, words):
    r = post(bounded, path, body)
    assert_refused(r, 422, field, *words)


def test_answers_within_the_limits_are_served(bounded, tokenizer):
    info = httpx.get(bounded + "/info").json()
    assert info["limits"]["max_masks"] == 3 and info["limits"]["max_response_bytes"] == 50_000
    r = post(bounded, "/api/fill-mask", {"texts": ["[MASK] [MASK] [MASK] 갔다."] * 4, "top_k": 10})
    assert r.status_code == 200, r.text
    assert len(r.content) <= 50_000
    assert [len(m["candidates"]) for res in r.json()["results"] for m in res["masks"]] == [10] * 12
    packed = post(bounded, "/api/attention", {"text": "나는 오늘 학교에 갔다. " * 5, "packed": True})
    assert packed.status_code == 200 and len(packed.content) <= 50_000


def test_generation_limits_name_the_setting(tmp_path, tokenizer):
    gpt = make_gpt_checkpoint(tmp_path / "gpt", tokenizer)
    with live_server(create_app(gpt, ServeConfig(max_new_tokens=20, max_beams=2))) as url:
        assert_refused(post(url, "/api/generate", {"prompt": "서울은", "max_new_tokens": 21}), 422, "max_new_tokens",
                       "less than or equal to 20", "max_new_tokens = 20")
        assert_refused(post(url, "/api/generate", {"prompt": "서울은", "num_beams": 3}), 422, "num_beams",
                       "max_beams = 2", "--max-beams")


# ---- memory under the worst request allowed ---------------------------------------------------

def memory_mb(pid: int, key: str) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{key}:\s+(\d+) kB", status, re.M).group(1)) / 1024


def text_of_tokens(tokenizer, prefix: str, filler: str, tokens: int) -> str:
    """`prefix` + as much of `filler` repeated as fits in `tokens` tokens (with [CLS] and [SEP])."""
    text = prefix
    while len(tokenizer.encode(text + filler).ids) <= tokens:
        text += filler
    return text


# The largest answers the default limits allow (7.6 MB of fill-mask) grow a tiny model's server by
# ~65 MB at the peak; before the limits, the request of the audit below (32 texts x 285 masks,
# top_k 50) took 2 GB and answered 941 MB.
MAX_GROWTH_MB = 150


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads the memory of the server from /proc")
def test_worst_allowed_requests_keep_memory_and_answers_bounded(fill_mask_dir, tokenizer):
    """`hanformer serve` with its default limits, sent the largest request each endpoint allows."""
    defaults = ServeConfig()
    long = ("The cat sat on the mat. " * 100)[:defaults.max_chars]
    masks = "[MASK] " * defaults.max_masks
    # A fill-mask text as long as its answer allows: 32 texts x 8 masks x 50 candidates fill
    # max_response_bytes to the brim (each candidate repeats the text).
    per_candidate = defaults.max_response_bytes // (defaults.max_batch * defaults.max_masks * defaults.max_top_k)
    brim = masks + "x" * (per_candidate - 96 - len(masks))
    worst = {
        "fill-mask": {"texts": [brim] * defaults.max_batch, "top_k": defaults.max_top_k},
        "predict": {"texts": [(masks + long)[:defaults.max_chars]] * defaults.max_batch},
        "tokenize": {"texts": [long] * defaults.max_batch, "pairs": [long] * defaults.max_batch},
        "embeddings": {"texts": [long] * defaults.max_batch, "normalize": False},
        "attention": {"text": text_of_tokens(tokenizer, "", "The cat sat. ", 128)},
    }
    small = {"fill-mask": {"texts": ["a [MASK]"]}, "predict": {"texts": ["a [MASK]"]}, "tokenize": {"texts": ["a"]},
             "embeddings": {"texts": ["a"]}, "attention": {"text": "a"}}
    with serve_process(fill_mask_dir) as (url, proc), httpx.Client(base_url=url, timeout=120) as client:
        limit = client.get("/info").json()["limits"]["max_response_bytes"]
        assert limit == defaults.max_response_bytes
        for path, body in small.items():  # first use: imports, caches, thread pool
            assert client.post("/api/" + path, json=body).status_code == 200, path
        before = memory_mb(proc.pid, "VmRSS")
        clear_refs = Path(f"/proc/{proc.pid}/clear_refs")
        try:
            clear_refs.write_text("5")  # restart the peak (VmHWM) from now
        except OSError:
            pass  # then the peak since the start bounds it from above: still a valid check
        sizes = {}
        for _ in range(2):
            for path, body in worst.items():
                r = client.post("/api/" + path, json=body)
                assert r.status_code == 200, (path, r.text[:300])
                sizes[path] = len(r.content)
        peak = memory_mb(proc.pid, "VmHWM")
        after = memory_mb(proc.pid, "VmRSS")
        assert all(size <= limit for size in sizes.values()), sizes
        assert sizes["fill-mask"] > limit * 0.8  # the request really was at the limit
        assert len(json.loads(client.post("/api/fill-mask", json=worst["fill-mask"]).content)["results"]) == 32
        assert peak - before < MAX_GROWTH_MB, (before, peak)
        assert after - before < MAX_GROWTH_MB, (before, after)

        # The audit's request is refused at once, without work.
        audit = {"texts": [("[MASK] " * 285)[:1780]] * 32, "top_k": 50}
        r = client.post("/api/fill-mask", json=audit)
        assert_refused(r, 422, "texts[0]", "max_masks = 8")
        assert memory_mb(proc.pid, "VmRSS") - before < MAX_GROWTH_MB

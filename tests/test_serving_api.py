"""The JSON API against a real uvicorn server on a free loopback port."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch

from _live_server import live_server
from _tiny_checkpoints import make_checkpoint, make_tokenizer
from hanformer.serving.app import create_app
from hanformer.serving.config import ServeConfig

LABELS = ["부정", "긍정"]
SENTENCES = ["이 영화 정말 재미있어요!", "나는 오늘 학교에 갔다.", "The cat sat on the mat."]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory, tokenizer):
    return make_checkpoint(tmp_path_factory.mktemp("cls"), tokenizer, "BertForSequenceClassification", LABELS)


@pytest.fixture(scope="module")
def server(classifier_dir):
    app = create_app(classifier_dir, ServeConfig(max_chars=200, max_batch=4, max_body_bytes=20_000,
                                                   attention_max_tokens=16))
    with live_server(app) as url:
        yield url, app


def post(url, path, body, **kw):
    return httpx.post(url + path, json=body, timeout=30, **kw)


def test_health_and_info(server, classifier_dir):
    url, _ = server
    assert httpx.get(url + "/health").json() == {"status": "ok"}
    info = httpx.get(url + "/info").json()
    assert info["task"] == "classification" and info["architecture"] == "BertForSequenceClassification"
    assert info["labels"] == LABELS
    assert info["config"]["num_hidden_layers"] == 2 and info["config"]["num_attention_heads"] == 4
    assert info["limits"]["max_chars"] == 200 and info["limits"]["max_batch"] == 4
    assert info["version"] and info["name"] == classifier_dir.name


def test_predict_matches_hanformer_predict(server, classifier_dir):
    from hanformer.tasks.predict import predict

    url, _ = server
    r = post(url, "/api/predict", {"texts": SENTENCES})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["task"] == "classification"
    expected = predict(classifier_dir, SENTENCES, task="classification", device="cpu")
    assert [x["label"] for x in body["results"]] == [x["label"] for x in expected]
    for got, want in zip(body["results"], expected, strict=True):
        assert set(got["probabilities"]) == set(LABELS)
        assert sum(got["probabilities"].values()) == pytest.approx(1, abs=1e-5)
        for name in LABELS:
            assert got["probabilities"][name] == pytest.approx(want["probabilities"][name], abs=1e-5)


def test_tokenize_matches_the_tokenizer(server, tokenizer):
    url, _ = server
    r = post(url, "/api/tokenize", {"texts": ["나는 오늘 학교에 갔다.", "a b"], "pairs": ["The cat", "c"]})
    assert r.status_code == 200, r.text
    first = r.json()["results"][0]
    enc = tokenizer.encode("나는 오늘 학교에 갔다.", pair="The cat")
    assert first["tokens"] == enc.tokens and first["ids"] == enc.ids
    assert first["type_ids"] == enc.type_ids and 1 in first["type_ids"]
    start, end = first["offsets"][1]
    assert "나는 오늘 학교에 갔다."[start:end] == first["tokens"][1]


def test_attention_matches_the_model(server, classifier_dir, tokenizer):
    from hanformer.models.checkpoint import load_model
    from hanformer.visualization.attention import attention_data

    url, _ = server
    r = post(url, "/api/attention", {"text": "나는 오늘 학교에 갔다.", "pair": "The cat."})
    assert r.status_code == 200, r.text
    data = r.json()
    expected = attention_data(load_model(classifier_dir), tokenizer, "나는 오늘 학교에 갔다.", "The cat.")
    assert data["tokens"] == expected.tokens and data["type_ids"] == expected.type_ids
    att = torch.tensor(data["attentions"])
    assert att.shape == (2, 4, len(expected.tokens), len(expected.tokens))
    torch.testing.assert_close(att, expected.attentions, atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.tensor(data["rollout"]), expected.rollout(), atol=1e-4, rtol=0)
    packed = post(url, "/api/attention", {"text": "나는 오늘 학교에 갔다.", "packed": True}).json()
    assert packed["attentions"]["encoding"] == "uint8-base64"


def test_embeddings_are_unit_vectors_of_the_encoder(server, classifier_dir):
    from hanformer.embedding.encode import embed

    url, _ = server
    r = post(url, "/api/embeddings", {"texts": SENTENCES[:2]})
    assert r.status_code == 200, r.text
    body = r.json()
    vectors = torch.tensor(body["embeddings"])
    assert body["dim"] == 32 and vectors.shape == (2, 32)
    torch.testing.assert_close(vectors.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(vectors, embed(classifier_dir, SENTENCES[:2]), atol=1e-5, rtol=0)
    cls = post(url, "/api/embeddings", {"texts": SENTENCES[:1], "pooling": "cls", "normalize": False}).json()
    assert not torch.allclose(torch.tensor(cls["embeddings"][0]).norm(), torch.tensor(1.0))


@pytest.mark.parametrize("path, body, status, field, message", [
    ("/api/predict", {"texts": "one text"}, 422, "texts", "valid array"),
    ("/api/predict", {"texts": [1]}, 422, "texts[0]", "valid string"),
    ("/api/predict", {"texts": ["ok", "x" * 201]}, 422, "texts[1]", "at most 200 characters"),
    ("/api/predict", {"texts": ["a"] * 5}, 422, "texts", "at most 4 items"),
    ("/api/predict", {"texts": []}, 422, "texts", "at least 1 item"),
    ("/api/predict", {"texts": [""]}, 422, "texts[0]", "at least 1 character"),
    ("/api/predict", {"text": ["a"]}, 422, "text", "unknown field"),
    ("/api/predict", {"texts": ["a", "b"], "pairs": ["c"]}, 422, "pairs", "one pair per text"),
    ("/api/predict", ["a"], 422, "body", "JSON object"),
    ("/api/predict", {}, 422, "texts", "Field required"),
    ("/api/attention", {"text": 3}, 422, "text", "valid string"),
    ("/api/attention", {"text": "a", "packed": "yes"}, 422, "packed", "valid boolean"),
    ("/api/attention", {"text": "나는 오늘 학교에 갔다. " * 4}, 422, "text", "more than max_length=16"),
    ("/api/embeddings", {"texts": ["a"], "pooling": "max"}, 422, "pooling", "'mean' or 'cls'"),
    ("/api/fill-mask", {"texts": ["a [MASK]"]}, 422, "texts", "no masked-LM head"),
])
def test_bad_requests_get_4xx_naming_the_field(server, path, body, status, field, message):
    url, _ = server
    r = post(url, path, body)
    assert r.status_code == status, r.text
    err = r.json()
    assert err["field"] == field
    assert message in err["error"]


def test_malformed_and_oversized_bodies(server):
    url, _ = server
    headers = {"content-type": "application/json"}
    r = httpx.post(url + "/api/predict", content=b'{"texts": ["a",', headers=headers)
    assert r.status_code == 400 and r.json()["field"] == "body" and "invalid JSON" in r.json()["error"]
    r = httpx.post(url + "/api/predict", content=b"", headers=headers)
    assert r.status_code == 400 and "empty" in r.json()["error"]
    r = httpx.post(url + "/api/predict", content=b"\xff\xfe{}", headers=headers)
    assert r.status_code == 400 and r.json()["field"] == "body"
    big = json.dumps({"texts": ["가" * 100] * 200}).encode()
    r = httpx.post(url + "/api/predict", content=big, headers=headers)
    assert r.status_code == 413 and r.json()["field"] == "body" and "20000 bytes" in r.json()["error"]

    def chunks():  # no Content-Length: the limit must hold while streaming too
        for _ in range(100):
            yield b" " * 1000
    r = httpx.post(url + "/api/predict", content=chunks(), headers=headers)
    assert r.status_code == 413
    assert httpx.get(url + "/api/nothing").status_code == 404
    assert httpx.get(url + "/api/predict").status_code == 405
    # Still alive and answering after all of that.
    assert post(url, "/api/predict", {"texts": ["좋아요"]}).status_code == 200


def test_concurrent_requests_are_all_served_correctly(server):
    url, _ = server
    expected = {t: post(url, "/api/predict", {"texts": [t]}).json()["results"][0] for t in SENTENCES}
    jobs = [SENTENCES[i % 3] for i in range(24)]

    def one(i_text):
        i, text = i_text
        if i % 2:
            return text, post(url, "/api/predict", {"texts": [text]}).json()["results"][0]
        tokens = post(url, "/api/attention", {"text": text}).json()["tokens"]
        return text, tokens

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, enumerate(jobs)))
    for i, (text, got) in enumerate(results):
        if i % 2:
            assert got["label"] == expected[text]["label"]
            assert got["probabilities"] == pytest.approx(expected[text]["probabilities"], abs=1e-6)
        else:
            assert got[0] == "[CLS]" and got[-1] == "[SEP]"


def test_inference_runs_off_the_event_loop(server):
    """Two predictions blocked inside the model at the same time, and /health still answers."""
    url, app = server
    engine = app.state.engine
    original = engine.predict
    inside = threading.Semaphore(0)
    release = threading.Event()

    def slow_predict(*args, **kwargs):
        inside.release()
        assert release.wait(20), "never released"
        return original(*args, **kwargs)

    engine.predict = slow_predict
    try:
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(post, url, "/api/predict", {"texts": ["좋아요"]}) for _ in range(2)]
            assert inside.acquire(timeout=20) and inside.acquire(timeout=20), "requests were not run in parallel"
            assert httpx.get(url + "/health", timeout=5).json() == {"status": "ok"}
            release.set()
            assert [f.result().status_code for f in futures] == [200, 200]
    finally:
        release.set()
        engine.predict = original


# ---- the other heads ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def head_servers(tmp_path_factory, tokenizer):
    dirs = {
        "fill-mask": make_checkpoint(tmp_path_factory.mktemp("pre"), tokenizer, "BertForPreTraining"),
        "ner": make_checkpoint(tmp_path_factory.mktemp("ner"), tokenizer, "BertForTokenClassification",
                               ["O", "B-PS", "I-PS", "B-LC", "I-LC"]),
        "qa": make_checkpoint(tmp_path_factory.mktemp("qa"), tokenizer, "BertForQuestionAnswering"),
        "base": make_checkpoint(tmp_path_factory.mktemp("base"), tokenizer, "BertModel"),
    }
    with contextlib_exit_stack() as stack:
        yield {name: (stack.enter_context(live_server(create_app(d))), d) for name, d in dirs.items()}


def contextlib_exit_stack():
    import contextlib

    return contextlib.ExitStack()


def test_fill_mask_ranks_the_vocabulary(head_servers, tokenizer):
    from hanformer.models.checkpoint import load_model

    url, model_dir = head_servers["fill-mask"]
    assert httpx.get(url + "/info").json()["task"] == "fill-mask"
    text = "나는 오늘 [MASK]에 갔다."
    r = post(url, "/api/fill-mask", {"texts": [text], "top_k": 3})
    assert r.status_code == 200, r.text
    (mask,) = r.json()["results"][0]["masks"]
    enc = tokenizer.encode(text)
    assert enc.tokens[mask["position"]] == "[MASK]"
    with torch.no_grad():
        logits = load_model(model_dir)(torch.tensor([enc.ids])).prediction_logits[0, mask["position"]]
    scores, ids = torch.softmax(logits, -1).topk(3)
    assert [c["id"] for c in mask["candidates"]] == ids.tolist()
    assert [c["score"] for c in mask["candidates"]] == pytest.approx(scores.tolist(), abs=1e-5)
    first = mask["candidates"][0]
    assert first["sequence"] == text.replace("[MASK]", first["token"].removeprefix("##"))
    r = post(url, "/api/fill-mask", {"texts": [text, "마스크 없음"]})
    assert r.status_code == 422 and r.json()["field"] == "texts[1]"
    assert post(url, "/api/fill-mask", {"texts": [text], "top_k": 0}).json()["field"] == "top_k"


def test_fill_mask_of_several_masks_and_texts_matches_the_full_projection(head_servers, tokenizer):
    """The server projects only the masked positions onto the vocabulary; each mask still gets
    the candidates of the full (texts, tokens, vocab) logits, in reading order."""
    from hanformer.models.checkpoint import load_model

    url, model_dir = head_servers["fill-mask"]
    texts = ["[MASK]는 오늘 [MASK]에 갔다.", "The [MASK] sat on the mat.", "[MASK] [MASK] [MASK]"]
    r = post(url, "/api/fill-mask", {"texts": texts, "top_k": 4})
    assert r.status_code == 200, r.text
    model = load_model(model_dir)
    for text, result in zip(texts, r.json()["results"], strict=True):
        enc = tokenizer.encode(text)
        positions = [i for i, t in enumerate(enc.ids) if t == tokenizer.mask_token_id]
        assert [m["position"] for m in result["masks"]] == positions
        with torch.no_grad():
            logits = model(torch.tensor([enc.ids])).prediction_logits[0]
        for mask in result["masks"]:
            scores, ids = torch.softmax(logits[mask["position"]], -1).topk(4)
            assert [c["id"] for c in mask["candidates"]] == ids.tolist()
            assert [c["score"] for c in mask["candidates"]] == pytest.approx(scores.tolist(), abs=1e-5)


def test_info_lists_the_endpoints_each_checkpoint_serves(head_servers, server):
    """The page's footer shows `endpoints`: only what answers (the others explain why not)."""
    expected = {
        "fill-mask": ["/api/tokenize", "/api/fill-mask", "/api/predict", "/api/embeddings", "/api/attention"],
        "ner": ["/api/tokenize", "/api/embeddings", "/api/predict", "/api/attention"],
        "qa": ["/api/tokenize", "/api/embeddings", "/api/predict", "/api/attention"],
        "base": ["/api/tokenize", "/api/embeddings", "/api/attention"],
    }
    for name, endpoints in expected.items():
        url, _ = head_servers[name]
        assert httpx.get(url + "/info").json()["endpoints"] == endpoints, name
        assert post(url, "/api/tokenize", {"texts": ["a"]}).status_code == 200
    url, _ = server
    assert httpx.get(url + "/info").json()["endpoints"] == expected["ner"]
    assert post(url, "/api/fill-mask", {"texts": ["a [MASK]"]}).status_code == 422
    assert post(url, "/api/embeddings", {"texts": ["a"]}).status_code == 200
    url, _ = head_servers["base"]
    assert post(url, "/api/predict", {"texts": ["a"]}).status_code == 422


def test_info_says_the_language_of_the_vocabulary(tmp_path, tokenizer):
    """Korean when a fifth of the vocabulary's words hold Hangul (the page's examples follow it)."""
    from hanformer.serving.engine import hangul_share
    from hanformer.tokenization.config import TokenizerConfig
    from hanformer.tokenization.trainer import train_tokenizer

    corpus = tmp_path / "en.txt"
    corpus.write_text("The cat sat on the mat.\nSeoul is the capital of Korea.\nI really liked this movie.\n" * 3,
                      encoding="utf-8")
    english = train_tokenizer(corpus, TokenizerConfig(vocab_size=200, min_frequency=1), progress=False)
    assert hangul_share(english.get_vocab()) == 0.0  # the jamo every vocabulary gets are not words
    assert hangul_share(["가", "##나", "a", "##b", "."]) == 0.5
    english_dir = make_checkpoint(tmp_path / "en", english, "BertForMaskedLM")
    assert create_app(english_dir).state.engine.info()["language"] == "en"
    korean_dir = make_checkpoint(tmp_path / "ko", tokenizer, "BertForMaskedLM")
    assert create_app(korean_dir).state.engine.info()["language"] == "ko"


def test_ner_and_qa_heads(head_servers):
    url, _ = head_servers["ner"]
    info = httpx.get(url + "/info").json()
    assert info["task"] == "token-classification" and info["labels"][:2] == ["O", "B-PS"]
    text = "이순신은 조선 중기의 무신이다."
    result = post(url, "/api/predict", {"texts": [text]}).json()["results"][0]
    for ent in result["entities"]:
        assert text[ent["start"]:ent["end"]] == ent["text"] and ent["type"] in ("PS", "LC")

    url, _ = head_servers["qa"]
    context = "나는 오늘 학교에 갔다. 날씨가 좋아서 공원에 산책을 갔다."
    r = post(url, "/api/predict", {"texts": ["어디에 갔다?"], "pairs": [context]})
    assert r.status_code == 200, r.text
    answer = r.json()["results"][0]
    assert answer["answer"] and context[answer["start"]:answer["end"]] == answer["answer"]
    r = post(url, "/api/predict", {"texts": ["어디에 갔다?"]})
    assert r.status_code == 422 and r.json()["field"] == "pairs"

    url, _ = head_servers["base"]
    assert httpx.get(url + "/info").json()["task"] == "embeddings"
    r = post(url, "/api/predict", {"texts": ["좋아요"]})
    assert r.status_code == 422 and "no task head" in r.json()["error"]
    assert post(url, "/api/embeddings", {"texts": ["좋아요"]}).status_code == 200

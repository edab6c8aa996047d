"""`hanformer serve` on translation models (the Transformer and the recurrent encoder–decoder):
the registry reads both folder kinds, /api/translate answers what `translate()` does, bad bodies
are one-line refusals, /api/translate/attention is a distribution over the source per output
token, and the page translates and draws the heatmap in a real Chromium."""

from __future__ import annotations

import httpx
import pytest
import torch

from _browser import chromium, record_errors
from _live_server import live_server
from _tiny_checkpoints import make_tokenizer
from hanformer.generation.translate import load_translator, translate
from hanformer.models.checkpoint import inspect_checkpoint, load_model
from hanformer.models.encoder_decoder.config import TransformerConfig
from hanformer.models.encoder_decoder.model import TransformerForSeq2SeqLM
from hanformer.models.encoder_decoder.vocab import special_ids
from hanformer.models.registry import TRANSLATION, task_of
from hanformer.models.seq2seq import RNNForSeq2SeqLM, RNNSeq2SeqConfig
from hanformer.serving.app import create_app
from hanformer.serving.config import ServeConfig

SOURCES = ["The cat sat on the mat.", "", "Seoul is the capital of Korea.", "I really liked this movie."]
CONFIG = ServeConfig(max_chars=200, max_batch=8, max_new_tokens=12, max_beams=4)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("tok"))


def _ids(tokenizer) -> dict[str, int]:
    ids = special_ids(tokenizer)
    return {"pad_token_id": ids["pad"], "eos_token_id": ids["eos"], "decoder_start_token_id": ids["start"]}


def _save(model, tokenizer, directory):
    model.eval().save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def transformer_dir(tmp_path_factory, tokenizer):
    torch.manual_seed(0)
    config = TransformerConfig.preset("tiny", vocab_size=tokenizer.vocab_size, d_model=32, encoder_layers=1,
                                      decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
                                      encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
                                      dropout=0.0, **_ids(tokenizer))
    return _save(TransformerForSeq2SeqLM(config), tokenizer, tmp_path_factory.mktemp("transformer"))


def _rnn_dir(tmp_path_factory, tokenizer, attention: str):
    torch.manual_seed(0)
    config = RNNSeq2SeqConfig.preset("tiny", vocab_size=tokenizer.vocab_size, attention=attention, dropout=0.0,
                                     max_position_embeddings=64, **_ids(tokenizer))
    return _save(RNNForSeq2SeqLM(config), tokenizer, tmp_path_factory.mktemp(f"rnn-{attention}"))


@pytest.fixture(scope="module")
def rnn_dir(tmp_path_factory, tokenizer):
    return _rnn_dir(tmp_path_factory, tokenizer, "bahdanau")


@pytest.fixture(scope="module")
def rnn_plain_dir(tmp_path_factory, tokenizer):
    return _rnn_dir(tmp_path_factory, tokenizer, "none")


def post(url, path, body):
    return httpx.post(url + path, json=body, timeout=60)


# ---- the registry knows the recurrent folders ------------------------------------------------

def test_the_registry_loads_and_inspects_a_recurrent_folder(rnn_dir):
    model = load_model(rnn_dir)
    assert type(model) is RNNForSeq2SeqLM and task_of(type(model)) == TRANSLATION
    saved = RNNForSeq2SeqLM.from_pretrained(rnn_dir)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), saved.state_dict().values(),
                                                 strict=True))
    assert model.encoder.embeddings.weight is model.decoder.embeddings.weight  # shared matrix stays shared
    info = inspect_checkpoint(rnn_dir)
    assert info["architectures"] == ["RNNForSeq2SeqLM"] and info["parameters"] == model.num_parameters()
    translator, _ = load_translator(rnn_dir)
    assert isinstance(translator, RNNForSeq2SeqLM)


def test_cross_attention_output_does_not_change_the_transformer_logits(transformer_dir):
    model = load_model(transformer_dir)
    source = torch.tensor([[5, 6, 7, 8, 3]])
    target = torch.tensor([[2, 9, 10]])
    plain = model(input_ids=source, decoder_input_ids=target)
    with_weights = model(input_ids=source, decoder_input_ids=target, output_attentions=True)
    torch.testing.assert_close(plain.logits, with_weights.logits)
    assert plain.cross_attentions is None
    assert [tuple(w.shape) for w in with_weights.cross_attentions] == [(1, 4, 3, 5)] * 2


# ---- the API ----------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["transformer", "rnn"])
def server(request, transformer_dir, rnn_dir):
    model_dir = transformer_dir if request.param == "transformer" else rnn_dir
    with live_server(create_app(model_dir, CONFIG)) as url:
        yield url, model_dir


@pytest.mark.parametrize("settings", [{"num_beams": 1, "max_new_tokens": 6},
                                      {"num_beams": 3, "max_new_tokens": 8, "length_penalty": 0.6}])
def test_translate_answers_what_translate_gives(server, settings):
    url, model_dir = server
    r = post(url, "/api/translate", {"texts": SOURCES, **settings})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["strategy"] == ("greedy" if settings["num_beams"] == 1 else "beam")
    model, tokenizer = load_translator(model_dir)
    expected = translate(model, SOURCES, tokenizer=tokenizer, num_beams=settings["num_beams"],
                         max_length=settings["max_new_tokens"], length_penalty=settings.get("length_penalty", 1.0),
                         batch_size=CONFIG.max_batch)
    assert [(t["source"], t["text"], t["token_ids"], t["finish_reason"]) for t in data["results"]] == \
        [(e.source, e.text, e.token_ids, e.finish_reason) for e in expected]
    for got, want in zip(data["results"], expected, strict=True):
        assert got["score"] == pytest.approx(want.score) if want.score is not None else got["score"] is None
        assert len(got["tokens"]) == len(got["token_ids"]) <= settings["max_new_tokens"]
    assert data["results"][1]["finish_reason"] == "empty" and data["results"][1]["text"] == ""


def test_info_names_the_task_and_its_endpoints(server):
    url, _ = server
    info = httpx.get(url + "/info").json()
    assert info["task"] == "translation"
    assert info["endpoints"] == ["/api/tokenize", "/api/translate", "/api/translate/attention"]


@pytest.mark.parametrize("body, status, field, words", [
    (b"", 400, "body", "empty"),
    (b"{not json", 400, "body", "invalid JSON"),
    (b"[]", 422, "body", "JSON object"),
    (b'{"texts": []}', 422, "texts", "at least 1"),
    (b'{"text": ["a"]}', 422, "text", "unknown field"),
    (b'{"texts": ["a"], "num_beams": 0}', 422, "num_beams", "greater than or equal to 1"),
    (b'{"texts": ["a"], "num_beams": 9}', 422, "num_beams", "max_beams = 4"),
    (b'{"texts": ["a"], "max_new_tokens": 500}', 422, "max_new_tokens", "max_new_tokens = 12"),
    (b'{"texts": ["a"], "length_penalty": "long"}', 422, "length_penalty", "valid number"),
    (b'{"texts": ["a"], "num_beams": "3"}', 422, "num_beams", "valid integer"),
])
def test_bad_translate_bodies_are_one_line_refusals(server, body, status, field, words):
    url, _ = server
    r = httpx.post(url + "/api/translate", content=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == status, r.text
    error = r.json()
    assert error["field"] == field and words in error["error"], error
    assert "\n" not in error["error"]


def test_attention_is_a_distribution_over_the_source_for_each_output_token(server, tokenizer):
    url, _ = server
    source = SOURCES[0]
    translation = post(url, "/api/translate", {"texts": [source], "num_beams": 1, "max_new_tokens": 7}).json()
    ids = translation["results"][0]["token_ids"]
    r = post(url, "/api/translate/attention", {"text": source, "token_ids": ids})
    assert r.status_code == 200, r.text
    data = r.json()
    source_tokens = tokenizer.encode(source, add_special_tokens=False).tokens
    assert data["source_tokens"] == [*source_tokens, "[SEP]"]  # the pieces + EOS, as translation encodes them
    assert data["output_tokens"] == translation["results"][0]["tokens"]
    weights = torch.tensor(data["weights"])
    assert weights.shape == (len(ids), len(source_tokens) + 1)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(len(ids)), atol=1e-3, rtol=0)
    assert bool((weights >= 0).all())


@pytest.mark.parametrize("body, field, words", [
    ({"text": "a cat", "token_ids": []}, "token_ids", "at least 1"),
    ({"text": "a cat", "token_ids": [10**6]}, "token_ids", "not a token id"),
    ({"text": "   ", "token_ids": [5]}, "text", "blank"),
    ({"text": "a cat", "token_ids": [5] * 13}, "token_ids", "max_new_tokens = 12"),
])
def test_bad_attention_bodies_name_the_field(server, body, field, words):
    url, _ = server
    r = post(url, "/api/translate/attention", body)
    assert r.status_code == 422 and r.json()["field"] == field and words in r.json()["error"], r.text


def test_a_recurrent_model_without_attention_says_it_has_none(rnn_plain_dir):
    with live_server(create_app(rnn_plain_dir, CONFIG)) as url:
        ids = post(url, "/api/translate", {"texts": ["a cat"], "num_beams": 1}).json()["results"][0]["token_ids"]
        data = post(url, "/api/translate/attention", {"text": "a cat", "token_ids": ids}).json()
    assert data["attention"] == "none" and data["weights"] is None and "no attention" in data["description"]


def test_encoder_endpoints_refuse_a_translation_model_and_translate_refuses_others(transformer_dir, tmp_path,
                                                                                  tokenizer):
    from _tiny_checkpoints import make_checkpoint

    with live_server(create_app(transformer_dir, CONFIG)) as url:
        r = post(url, "/api/embeddings", {"texts": ["a cat"]})
        assert r.status_code == 422 and "/api/translate" in r.json()["error"]
    classifier = make_checkpoint(tmp_path / "cls", tokenizer, "BertForSequenceClassification", ["a", "b"])
    with live_server(create_app(classifier, CONFIG)) as url:
        r = post(url, "/api/translate", {"texts": ["a cat"]})
        assert r.status_code == 422 and "not a translation model" in r.json()["error"]


# ---- the page in a real browser ---------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["transformer", "rnn", "rnn-none"])
def test_page_translates_and_draws_the_cross_attention(kind, transformer_dir, rnn_dir, rnn_plain_dir):
    model_dir = {"transformer": transformer_dir, "rnn": rnn_dir, "rnn-none": rnn_plain_dir}[kind]
    with chromium() as browser, live_server(create_app(model_dir, CONFIG)) as url:
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        page = record_errors(context.new_page())
        page.goto(url + "/")
        page.wait_for_selector("#translate:not([disabled])")
        assert "translation" in page.inner_text("#model-line")
        assert page.is_hidden("#try")  # the encoder's form is not shown for a translation model
        page.fill("#source-lines", "The cat sat on the mat.\nSeoul is the capital of Korea.")
        page.select_option("#translate-strategy", "greedy")
        page.fill("#translate-max-new-tokens", "6")
        page.click("#translate")
        page.wait_for_selector("#translations .translation-row >> nth=1")
        assert page.locator("#translations .translation-row").count() == 2
        assert "greedy" in page.inner_text("#translate-status")
        if kind == "rnn-none":
            page.wait_for_selector("#cross-attention .no-attention")
            assert "no attention" in page.inner_text("#cross-attention")
        else:
            page.wait_for_selector("#cross-attention table.heatmap td")
            header = page.locator("#cross-attention table.heatmap thead th").all_text_contents()
            assert header[-1] == "[SEP]"  # the source's EOS is the last column
            rows = page.locator("#cross-attention table.heatmap tbody tr").count()
            assert rows >= 1
            # Pick the second sentence: the heatmap follows.
            page.click("#translations .translation-row >> nth=1")
            page.wait_for_function("document.querySelector('#cross-attention table.heatmap')"
                                   " && document.querySelector('#cross-attention').dataset.row === '1'")
        assert page.errors == []
        context.close()

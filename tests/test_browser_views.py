"""The page of `hanformer serve` and the file of `hanformer attention` in a real headless Chromium.

Uses the system's Chromium (Debian's `chromium` package; `make test` installs it) driven by
Playwright. No browser is ever downloaded: when no Chromium can be found the tests skip and say why.
"""

from __future__ import annotations

import json
import re

import pytest

from _browser import chromium, record_errors
from _live_server import live_server
from _tiny_checkpoints import make_checkpoint, make_gpt_checkpoint, make_tokenizer
from hanformer.cli.main import main
from hanformer.serving.app import create_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LABELS = ["부정", "긍정"]
# How many pixels of a canvas are painted (not transparent).
PAINTED = """sel => {
  const c = document.querySelector(sel);
  const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < px.length; i += 4) if (px[i]) n++;
  return n;
}"""


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser):
    """A fresh page that records console errors and uncaught exceptions."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = record_errors(context.new_page())
    yield page
    context.close()


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory, tokenizer):
    return make_checkpoint(tmp_path_factory.mktemp("cls"), tokenizer, "BertForSequenceClassification", LABELS,
                           layers=3, heads=4)


def test_page_predicts_and_draws_the_attention(page, classifier_dir, tokenizer, artifacts_dir):
    with live_server(create_app(classifier_dir)) as url:
        page.goto(url + "/")
        page.wait_for_selector("#submit:not([disabled])")
        assert "classification" in page.inner_text("#model-line")
        page.fill("#text", "이 영화 정말 재미있어요!")
        page.click("#submit")
        page.wait_for_selector("#prediction .label-pill")
        page.wait_for_selector("#attention canvas.hfa-lines[data-lines]", state="attached")
        label = page.inner_text("#prediction .label-pill")
        assert label in LABELS
        assert page.locator("#prediction .bar-row").count() == 2
        tokens = page.locator("#attention .hfa-from .hfa-token text").all_text_contents()
        assert tokens == ["[CLS]", *tokenizer.tokenize("이 영화 정말 재미있어요!"), "[SEP]"]
        lines = int(page.get_attribute("#attention canvas.hfa-lines", "data-lines"))
        assert lines > 0
        assert len(page.get_attribute("#attention canvas.hfa-lines", "data-colours").split()) == 4  # all heads
        assert page.evaluate(PAINTED, "#attention canvas.hfa-lines") > 100
        page.screenshot(path=str(artifacts_dir / "serve-page.png"), full_page=True)

        # Hover a token: only its own lines stay.
        page.hover("#attention .hfa-from .hfa-token[data-index='2']")
        hovered = int(page.get_attribute("#attention canvas.hfa-lines", "data-lines"))
        assert 0 < hovered < lines
        assert page.locator("#attention .hfa-from .hfa-token.focus").get_attribute("data-index") == "2"
        page.click("#attention .hfa-from .hfa-token[data-index='2']")
        page.mouse.move(5, 5)  # away from the tokens: the pinned token keeps its lines
        assert int(page.get_attribute("#attention canvas.hfa-lines", "data-lines")) == hovered
        assert "Pinned to" in page.inner_text("#attention .hfa-caption")
        page.click("#attention .hfa-from .hfa-token[data-index='2']")
        page.mouse.move(5, 5)
        assert int(page.get_attribute("#attention canvas.hfa-lines", "data-lines")) == lines
        # One head only: fewer lines, all in that head's colour.
        page.dblclick("#attention .hfa-chip[data-head='1']")
        assert page.get_attribute("#attention canvas.hfa-lines", "data-colours") == "#ff7f0e"

        # The model view: every layer x head, plus mean and rollout, as canvases.
        page.click("#attention button[data-view='model']")
        assert page.locator("#attention canvas.hfa-map").count() == 3 * (4 + 2)
        page.screenshot(path=str(artifacts_dir / "serve-model-view.png"), full_page=True)
        page.click("#attention canvas.hfa-map[data-layer='0'][data-head='2']")
        assert page.is_visible("#attention .hfa-head-view")
        # Indices from 0 underneath, numbers from 1 on the page (as in the report).
        assert page.input_value("#attention select.hfa-layer") == "0"
        assert page.inner_text("#attention .hfa-caption").startswith("Layer 1, head 3. ")
        assert page.locator("#attention select.hfa-layer option").all_text_contents() == ["1", "2", "3"]
        assert page.locator("#attention .hfa-chip").all_text_contents() == ["1", "2", "3", "4"]

        # A bad input is reported on the page, and the page keeps working.
        # Over the server's limit (the field's maxlength is lifted to reach the server's check).
        page.eval_on_selector("#text", "t => { t.removeAttribute('maxlength'); t.value = 'x'.repeat(2001); }")
        page.click("#submit")
        page.wait_for_selector("#error:not([hidden])")
        assert "at most 2000 characters" in page.inner_text("#error")
    assert [e for e in page.errors if "status of 422" not in e] == []


def test_attention_file_renders_offline_without_errors(page, classifier_dir, tmp_path, artifacts_dir, capsys):
    out = tmp_path / "attention.html"
    code = main(["attention", "--model", str(classifier_dir), "--text", "나는 오늘 학교에 갔다.",
                 "--pair", "The cat sat on the mat.", "--out", str(out), "--layer", "1", "--heads", "0,2"])
    assert code == 0 and f"wrote {out}" in capsys.readouterr().out
    html = out.read_text(encoding="utf-8")
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', html)

    # Offline for real: any request leaving the file is recorded and refused.
    requests = []
    page.route("**/*", lambda route: (requests.append(route.request.url), route.abort())
               if not route.request.url.startswith("file:") else route.continue_())
    page.goto(out.as_uri())
    page.wait_for_selector("canvas.hfa-lines[data-lines]", state="attached")
    assert requests == []
    assert page.errors == []
    assert page.input_value("select.hfa-layer") == "1"
    on = page.eval_on_selector_all(".hfa-chip.on", "cs => cs.map(c => c.dataset.head)")
    assert on == ["0", "2"]
    # --layer 1 --heads 0,2 are indices: the second layer, the first and third heads.
    assert page.eval_on_selector("select.hfa-layer", "s => s.selectedOptions[0].textContent") == "2"
    assert page.inner_text(".hfa-caption").startswith("Layer 2, heads 1, 3. ")
    tokens = page.locator(".hfa-from .hfa-token text").all_text_contents()
    payload = json.loads(re.search(r'id="attention-data">(.*?)</script>', html, re.S).group(1))
    assert tokens == payload["data"]["tokens"]
    # Segment B (the pair) is drawn apart from segment A.
    assert page.locator(".hfa-to .hfa-token.seg-b").count() == sum(payload["data"]["type_ids"]) > 0
    # The aggregates draw a single colour.
    page.click("button[data-mode='rollout']")
    assert len(page.get_attribute("canvas.hfa-lines", "data-colours").split()) == 1
    page.screenshot(path=str(artifacts_dir / "attention-file-rollout.png"), full_page=True)
    page.click("button[data-view='model']")
    assert page.locator("canvas.hfa-map").count() == 3 * (4 + 2)
    assert page.evaluate(PAINTED, "canvas.hfa-map[data-layer='2'][data-head='rollout']") == len(tokens) ** 2
    assert page.errors == []


def test_page_answers_a_question_from_a_context(page, tokenizer, tmp_path, artifacts_dir):
    qa_dir = make_checkpoint(tmp_path / "qa", tokenizer, "BertForQuestionAnswering")
    context = "이순신은 조선 중기의 무신이다. 서울은 대한민국의 수도이다."
    with live_server(create_app(qa_dir)) as url:
        page.goto(url + "/")
        page.wait_for_selector("#submit:not([disabled])")
        assert page.inner_text("#text-label") == "Question" and page.is_visible("#pair")
        page.fill("#text", "대한민국의 수도는?")
        page.fill("#pair", context)
        page.keyboard.press("Control+Enter")
        page.wait_for_selector("#prediction .answer")
        page.wait_for_selector("#attention canvas.hfa-lines[data-lines]", state="attached")
        answer = page.inner_text("#prediction .answer")
        assert answer and answer in context
        assert page.inner_text("#prediction mark.entity") == answer
        # The context is segment B of the attention input.
        assert page.locator("#attention .hfa-from .hfa-token.seg-b").count() > 0
        page.screenshot(path=str(artifacts_dir / "serve-page-qa.png"), full_page=True)
    assert page.errors == []


# Every change of the generated text, recorded in the page: the output must fill in piece by piece.
RECORD_UPDATES = """() => {
  window.updates = [];
  const node = document.getElementById("generated-text");
  new MutationObserver(() => window.updates.push(node.textContent))
    .observe(node, { childList: true, characterData: true, subtree: true });
}"""


def test_page_generates_text_as_it_streams(page, tokenizer, tmp_path, artifacts_dir):
    import itertools
    import time

    from hanformer.generation.api import generate

    gpt_dir = make_gpt_checkpoint(tmp_path / "gpt", tokenizer, n_positions=64)
    app = create_app(gpt_dir)
    with live_server(app) as url:
        page.goto(url + "/")
        page.wait_for_selector("#generate:not([disabled])")
        assert "text-generation" in page.inner_text("#model-line")
        assert page.is_hidden("#try") and page.is_visible("#generate-card")
        assert page.is_hidden("#temperature")  # greedy: no sampling settings shown
        page.evaluate(RECORD_UPDATES)
        page.fill("#prompt", "서울은 대한민국의")
        page.fill("#max-new-tokens", "20")
        page.fill("#no-repeat-ngram-size", "2")
        # Paced steps, so the page sees tokens arrive one by one however fast this machine is
        # (a fast server can finish before the browser renders twice).
        hook = app.state.engine.model.register_forward_hook(lambda module, args, output: time.sleep(0.02))
        try:
            page.click("#generate")
            page.wait_for_selector("#generate-status:has-text('ended by')")
        finally:
            hook.remove()
        expected = generate(str(gpt_dir), "서울은 대한민국의", max_new_tokens=20, no_repeat_ngram_size=2)[0]
        assert page.inner_text("#generated-prompt") == "서울은 대한민국의"
        assert page.text_content("#generated-text") == expected.text
        updates = page.evaluate("window.updates")
        assert len(updates) >= 5 and updates[-1] == expected.text
        assert all(b.startswith(a) for a, b in itertools.pairwise(updates))  # grows, never rewritten
        assert "20 tokens in" in page.inner_text("#generate-status")
        page.screenshot(path=str(artifacts_dir / "serve-page-generate.png"), full_page=True)

        # Sampling settings appear with sampling; a bad one is reported next to its input.
        page.select_option("#strategy", "sample")
        assert page.is_visible("#temperature") and page.is_hidden("#num-beams")
        page.fill("#temperature", "0")
        page.click("#generate")
        page.wait_for_selector("#generate-error:not([hidden])")
        assert "temperature = 0.0: must be > 0" in page.inner_text("#generate-error")
        assert "invalid" in page.get_attribute("#temperature", "class")

        # Stop ends a running generation; the server stops too and keeps serving.
        def slow(module, args, output):
            time.sleep(0.05)

        hook = app.state.engine.model.register_forward_hook(slow)
        try:
            page.select_option("#strategy", "greedy")
            page.fill("#max-new-tokens", "40")
            page.click("#generate")
            page.wait_for_function("document.getElementById('generated-text').textContent.length > 0")
            page.click("#stop")
            page.wait_for_selector("#generate-status:has-text('Stopped after')")
            assert page.is_hidden("#stop") and page.is_enabled("#generate")
            page.screenshot(path=str(artifacts_dir / "serve-page-generate-stopped.png"), full_page=True)
        finally:
            hook.remove()
        page.fill("#max-new-tokens", "5")
        page.click("#generate")
        page.wait_for_selector("#generate-status:has-text('ended by')")
    assert [e for e in page.errors if "status of 422" not in e] == []


def test_report_and_views_number_layers_and_heads_from_1(page, classifier_dir, tokenizer, tmp_path):
    """The run report, the attention file and the page's views agree: layer 2 is the second."""
    from hanformer.models.checkpoint import load_model
    from hanformer.recipes.report.render import render_report
    from hanformer.visualization.attention import attention_data
    from hanformer.visualization.html import write_attention_html

    data = attention_data(load_model(classifier_dir), tokenizer, "나는 오늘 학교에 갔다.")
    heads = [[[round(float(v), 4) for v in row] for row in head] for head in data.attentions[1].tolist()]
    report = render_report({
        "run": {"name": "numbering", "recipe": "r.toml", "created": "today"}, "stages": [],
        "machine": {"hanformer": "test", "cpu_cores": 1, "torch": "x"},
        "attention": {"text": data.text, "tokens": list(data.tokens), "layer": 1, "layers": 3, "heads": heads,
                      "model": "tiny", "html": "report/attention.html"},
    })
    assert "attends to in layer 2 of the pretrained model" in report
    assert "Layers and heads are numbered from 1" in report
    assert re.search(r">layer 2, mean over 4 heads<", report)
    assert re.findall(r">head (\d+)<", report) == ["1", "2", "3", "4"]

    out = write_attention_html(data, tmp_path / "attention.html", layer=1)
    page.goto(out.as_uri())
    page.wait_for_selector("canvas.hfa-lines[data-lines]", state="attached")
    assert page.inner_text(".hfa-caption").startswith("Layer 2, all 4 heads. ")
    assert page.locator(".hfa-chip").all_text_contents() == ["1", "2", "3", "4"]
    assert page.get_attribute(".hfa-chip >> nth=0", "title").startswith("head 1 ")
    assert page.get_attribute(".hfa-from .hfa-token >> nth=0", "data-index") == "0"
    assert page.text_content(".hfa-from .hfa-token >> nth=0 >> title").endswith("(token 1, segment A)")
    page.click("button[data-view='model']")
    assert page.locator(".hfa-rowhead").all_text_contents() == ["1", "2", "3"]
    assert page.locator(".hfa-colhead").all_text_contents() == ["head 1", "head 2", "head 3", "head 4",
                                                                "mean", "rollout"]
    assert page.get_attribute("canvas.hfa-map[data-layer='1'][data-head='0']", "title").startswith("layer 2, head 1 ")
    page.click("button[data-view='head']")
    page.click("button[data-mode='rollout']")
    assert "attention rollout through layers 1\u20132" in page.inner_text(".hfa-caption")
    assert page.errors == []


def english_tokenizer(directory):
    from hanformer.tokenization.config import TokenizerConfig
    from hanformer.tokenization.trainer import train_tokenizer

    directory.mkdir(parents=True, exist_ok=True)
    corpus = directory / "corpus.txt"
    corpus.write_text("I went to the school today.\nThe cat sat on the mat.\nSeoul is the capital of Korea.\n" * 3,
                      encoding="utf-8")
    return train_tokenizer(corpus, TokenizerConfig(vocab_size=200, min_frequency=1), progress=False)


def test_page_footer_and_examples_follow_the_model(page, tokenizer, classifier_dir, tmp_path):
    """The footer lists only the endpoints the model serves; the examples are in its language."""
    english = english_tokenizer(tmp_path / "en-tok")
    cases = [
        (classifier_dir, "#submit", "#text", "이 영화 정말 재미있어요!",
         "/api/tokenize, /api/embeddings, /api/predict, /api/attention"),
        (make_checkpoint(tmp_path / "base", tokenizer, "BertModel"), "#submit", "#text", "나는 오늘 학교에 갔다.",
         "/api/tokenize, /api/embeddings, /api/attention"),
        (make_checkpoint(tmp_path / "en-mlm", english, "BertForMaskedLM"), "#submit", "#text",
         "I went to the [MASK] today.", "/api/tokenize, /api/fill-mask, /api/predict, /api/embeddings, /api/attention"),
        (make_checkpoint(tmp_path / "en-qa", english, "BertForQuestionAnswering"), "#submit", "#pair",
         "Seoul is the capital of Korea.", "/api/tokenize, /api/embeddings, /api/predict, /api/attention"),
        (make_gpt_checkpoint(tmp_path / "en-gpt", english), "#generate", "#prompt", "Seoul is the capital of",
         "/api/tokenize, /api/generate"),
    ]
    for model_dir, button, field, example, endpoints in cases:
        with live_server(create_app(model_dir)) as url:
            page.goto(url + "/")
            page.wait_for_selector(f"{button}:not([disabled])")
            assert page.inner_text("#foot").endswith(" \u00b7 JSON API: /info, " + endpoints), model_dir.name
            assert page.get_attribute(field, "placeholder") == example, model_dir.name
            if button == "#submit":  # the example runs as it is
                page.click(button)
                page.wait_for_selector("#prediction-card:not([hidden])")
    assert page.errors == []

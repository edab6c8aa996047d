"""The page of `hanformer serve` on a phone: 390 px wide (an iPhone 12-15), in a real headless
Chromium emulating a mobile browser, for every kind of model the server serves.

On a phone the browser widens its layout to whatever the page needs, so a page wider than the
screen shows up as `document.documentElement.scrollWidth` (and `innerWidth`) above 390.
"""

from __future__ import annotations

import pytest

from _browser import chromium, record_errors
from _live_server import live_server
from _tiny_checkpoints import make_checkpoint, make_gpt_checkpoint, make_tokenizer
from hanformer.serving.app import create_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
WIDTHS = """() => ({
  scroll: document.documentElement.scrollWidth,
  inner: window.innerWidth,
  right: Math.max(...[...document.querySelectorAll("header, main, .card, footer")]
                  .filter(e => e.offsetParent !== null).map(e => Math.ceil(e.getBoundingClientRect().right)))
})"""


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("tok"))


def checkpoint(kind: str, directory, tokenizer):
    if kind == "generate":
        return make_gpt_checkpoint(directory, tokenizer)
    architecture, labels = {
        "classification": ("BertForSequenceClassification", ["부정", "긍정"]),
        "ner": ("BertForTokenClassification", ["O", "B-PS", "I-PS", "B-LC", "I-LC"]),
        "qa": ("BertForQuestionAnswering", None),
        "fill-mask": ("BertForPreTraining", None),
    }[kind]
    # Many heads: the model view is wider than any phone and must scroll inside its card.
    return make_checkpoint(directory, tokenizer, architecture, labels, layers=4, heads=8)


def assert_fits(page, what: str) -> None:
    widths = page.evaluate(WIDTHS)
    assert widths == {"scroll": 390, "inner": 390, "right": widths["right"]}, (what, widths)
    assert widths["right"] <= 390, (what, widths)


@pytest.mark.parametrize("kind", ["classification", "ner", "qa", "fill-mask", "generate"])
def test_page_fits_a_390px_phone(browser, tokenizer, tmp_path, artifacts_dir, kind):
    model_dir = checkpoint(kind, tmp_path / kind, tokenizer)
    with live_server(create_app(model_dir)) as url:
        context = browser.new_context(**PHONE)
        try:
            page = record_errors(context.new_page())
            page.goto(url + "/")
            if kind == "generate":
                page.wait_for_selector("#generate:not([disabled])")
                assert_fits(page, "before generating")
                page.click("#generate")  # the example prompt
                page.wait_for_selector("#generate-status:has-text('ended by')")
                assert_fits(page, "generated")
            else:
                page.wait_for_selector("#submit:not([disabled])")
                assert_fits(page, "empty form")
                page.click("#submit")  # the example sentence
                page.wait_for_selector("#prediction-card:not([hidden])")
                page.wait_for_selector("#attention canvas.hfa-lines[data-lines]", state="attached")
                assert_fits(page, "head view")
                # The head view draws its lines in what the phone leaves between the tokens.
                stage = page.eval_on_selector("#attention .hfa-stage", "s => s.getBoundingClientRect().width")
                pane = page.eval_on_selector("#attention .hfa-head-view", "p => p.clientWidth")
                assert stage <= pane, (stage, pane)
                page.click("#attention button[data-view='model']")
                assert_fits(page, "model view")
                # 8 heads + mean + rollout do not fit: the grid scrolls inside its card.
                assert page.eval_on_selector("#attention .hfa-model-view", "p => p.scrollWidth > p.clientWidth")
            page.screenshot(path=str(artifacts_dir / f"serve-phone-{kind}.png"), full_page=True)
            assert page.errors == []
        finally:
            context.close()

/*
 * The generation box of `hanformer serve` for causal LM (GPT) checkpoints: POST /api/generate and
 * show the text as its server-sent events arrive. EventSource can only GET, so the stream is read
 * with fetch; Stop aborts the request, and the server stops generating when the client goes.
 */
var HanformerGenerate = (function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  // The example prompt, in the language of the model's vocabulary (/info `language`).
  var EXAMPLES = { ko: "서울은 대한민국의", en: "Seoul is the capital of" };
  var example = EXAMPLES.en;
  // Request field -> the input that sets it (to mark the one a 4xx answer names).
  var INPUTS = {
    prompt: "prompt", max_new_tokens: "max-new-tokens", temperature: "temperature", top_p: "top-p",
    seed: "seed", num_beams: "num-beams", no_repeat_ngram_size: "no-repeat-ngram-size"
  };
  var controller = null;

  function number(id) {
    var value = $(id).value.trim();
    return value === "" ? null : Number(value);
  }

  // Only what the user set goes out; the server fills in the generation defaults.
  function settings() {
    var body = {};
    var put = function (field, id) { var v = number(id); if (v !== null) body[field] = v; };
    put("max_new_tokens", "max-new-tokens");
    var strategy = $("strategy").value;
    if (strategy === "sample") {
      body.do_sample = true;
      put("temperature", "temperature");
      put("top_p", "top-p");
      put("seed", "seed");
    } else if (strategy === "beam") {
      put("num_beams", "num-beams");
    }
    if (number("no-repeat-ngram-size")) put("no_repeat_ngram_size", "no-repeat-ngram-size");
    return body;
  }

  function showStrategy() {
    var strategy = $("strategy").value;
    document.querySelectorAll("#generate-form [data-strategy]").forEach(function (label) {
      label.hidden = label.getAttribute("data-strategy") !== strategy;
    });
  }

  function showError(err) {
    var box = $("generate-error");
    document.querySelectorAll("#generate-form .invalid").forEach(function (n) { n.classList.remove("invalid"); });
    if (!err) { box.hidden = true; box.textContent = ""; return; }
    box.hidden = false;
    box.textContent = err.message;
    if (err.field && INPUTS[err.field]) $(INPUTS[err.field]).classList.add("invalid");
    $("generate-status").textContent = "";
  }

  // Calls onEvent(name, data) for every complete event of a text/event-stream body.
  function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) return;
        buffer += decoder.decode(chunk.value, { stream: true });
        var end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          var block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          var name = "message";
          var data = [];
          block.split("\n").forEach(function (line) {
            if (line.indexOf("event:") === 0) name = line.slice(6).trim();
            else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
          });
          if (data.length) onEvent(name, JSON.parse(data.join("\n")));
        }
        return pump();
      });
    }
    return pump();
  }

  function running(on) {
    $("generate").disabled = on;
    $("stop").hidden = !on;
    $("generated").classList.toggle("running", on);
  }

  function run(event) {
    if (event) event.preventDefault();
    if (controller) return;
    if (!$("prompt").value.trim()) $("prompt").value = example;
    var prompt = $("prompt").value;
    var body = settings();
    body.prompt = prompt;
    showError(null);
    $("generated-prompt").textContent = prompt;
    $("generated-text").textContent = "";
    $("generated").hidden = false;
    $("generate-status").textContent = "Generating\u2026";
    running(true);
    controller = new AbortController();
    var pieces = 0;
    fetch("/api/generate", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      signal: controller.signal
    }).then(function (response) {
      if (!response.ok) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          var err = new Error(data.error || (response.status + " " + response.statusText));
          err.field = data.field;
          throw err;
        });
      }
      return readEvents(response, function (name, data) {
        if (name === "token") {
          pieces += 1;
          $("generated-text").textContent += data.text;
          $("generate-status").textContent = "Generating\u2026 " + pieces + " pieces";
        } else if (name === "done") {
          $("generated-text").textContent = data.text;
          var rate = data.seconds > 0 ? Math.round(data.generated_tokens / data.seconds) + " tokens/s \u00b7 " : "";
          $("generate-status").textContent = data.generated_tokens + " tokens in " + data.seconds.toFixed(2) +
            " s \u00b7 " + rate + data.strategy + " \u00b7 ended by " + data.finish_reason;
        } else if (name === "error") {
          throw new Error(data.error);
        }
      });
    }).catch(function (err) {
      if (err.name === "AbortError") $("generate-status").textContent = "Stopped after " + pieces + " pieces";
      else showError(err);
    }).then(function () {
      controller = null;
      running(false);
    });
  }

  function setUp(info) {
    var limits = info.limits || {};
    // As the server does: 50 new tokens, within its limit and half the context window.
    var room = Math.max(1, Math.floor((limits.max_tokens || 100) / 2));
    $("max-new-tokens").value = Math.min(50, limits.max_new_tokens || 50, room);
    $("max-new-tokens").max = limits.max_new_tokens || "";
    $("num-beams").max = limits.max_beams || "";
    example = EXAMPLES[info.language] || EXAMPLES.en;
    $("prompt").placeholder = example;
    $("prompt").maxLength = limits.max_chars;
    $("generate-hint").textContent = "A causal language model continues your text; it appears as it is generated. " +
      "Leave the prompt empty to run the example; Ctrl+Enter runs, Stop ends it.";
    $("strategy").addEventListener("change", showStrategy);
    showStrategy();
    $("generate-form").addEventListener("submit", run);
    $("generate-form").addEventListener("keydown", function (e) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) run(e);
    });
    $("stop").addEventListener("click", function () { if (controller) controller.abort(); });
    $("generate-card").hidden = false;
    $("generate").disabled = false;
  }

  return { setUp: setUp };
})();

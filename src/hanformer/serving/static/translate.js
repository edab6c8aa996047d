/*
 * The translation box of `hanformer serve` for translation models (Transformer or recurrent
 * encoder-decoder): POST /api/translate with the source lines and the decoding controls, list the
 * translations, and for the chosen one draw its cross-attention (POST /api/translate/attention)
 * as a table of output tokens (rows) by source tokens (columns). Text always goes in through
 * textContent, never as markup.
 */
var HanformerTranslate = (function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  // The example line, in the language of the model's vocabulary (/info `language`).
  var EXAMPLES = { ko: "나는 오늘 학교에 갔다.", en: "The cat sat on the mat." };
  // Request field -> the input that sets it (to mark the one a 4xx answer names).
  var INPUTS = {
    texts: "source-lines", num_beams: "translate-num-beams", max_new_tokens: "translate-max-new-tokens",
    length_penalty: "translate-length-penalty"
  };
  var helpers = null;  // api() and el() of page.js
  var results = [];
  var shown = -1;

  function number(id) {
    var value = $(id).value.trim();
    return value === "" ? null : Number(value);
  }

  // Only what the user set goes out; the server fills in the translation defaults.
  function settings(texts) {
    var body = { texts: texts };
    var put = function (field, id) { var v = number(id); if (v !== null) body[field] = v; };
    if ($("translate-strategy").value === "greedy") {
      body.num_beams = 1;
    } else {
      put("num_beams", "translate-num-beams");
      put("length_penalty", "translate-length-penalty");
    }
    put("max_new_tokens", "translate-max-new-tokens");
    return body;
  }

  function showStrategy() {
    var strategy = $("translate-strategy").value;
    document.querySelectorAll("#translate-form [data-strategy]").forEach(function (label) {
      label.hidden = label.getAttribute("data-strategy") !== strategy;
    });
  }

  function showError(err) {
    var box = $("translate-error");
    document.querySelectorAll("#translate-form .invalid").forEach(function (n) { n.classList.remove("invalid"); });
    if (!err) { box.hidden = true; box.textContent = ""; return; }
    box.hidden = false;
    box.textContent = err.message;
    if (err.field && INPUTS[err.field]) $(INPUTS[err.field]).classList.add("invalid");
    $("translate-status").textContent = "";
  }

  // ---- translations ---------------------------------------------------------------------------

  function run(event) {
    if (event) event.preventDefault();
    if (!$("source-lines").value.trim()) $("source-lines").value = $("source-lines").placeholder;
    // Blank lines are left out: each row below is one sentence and its translation.
    var lines = $("source-lines").value.split("\n").filter(function (line) { return line.trim(); });
    var body = settings(lines);
    showError(null);
    $("translate").disabled = true;
    $("translate-status").textContent = "Translating\u2026";
    return helpers.api("/api/translate", body).then(function (data) {
      results = data.results;
      showTranslations(data);
      var status = results.length + (results.length === 1 ? " line" : " lines") + " in " +
        data.seconds.toFixed(2) + " s \u00b7 " + data.strategy +
        (data.strategy === "beam" ? " (" + data.num_beams + " beams, length penalty " + data.length_penalty + ")" : "") +
        " \u00b7 at most " + data.max_new_tokens + " tokens";
      $("translate-status").textContent = status;
      var first = results.findIndex(function (r) { return r.token_ids.length > 0; });
      if (first >= 0) return showAttention(first);
      $("cross-attention-card").hidden = true;
    }).catch(showError).then(function () {
      $("translate").disabled = false;
    });
  }

  function showTranslations(data) {
    var list = $("translations");
    list.textContent = "";
    data.results.forEach(function (r, i) {
      var row = helpers.el("button", "translation-row");
      row.type = "button";
      row.setAttribute("data-row", String(i));
      row.appendChild(helpers.el("span", "translation-source", r.source));
      row.appendChild(helpers.el("span", "translation-text", r.text || "(empty)"));
      var meta = r.token_ids.length + " tokens \u00b7 ended by " + r.finish_reason;
      if (r.score !== null) meta += " \u00b7 score " + r.score.toFixed(3);
      row.appendChild(helpers.el("span", "translation-meta dim", meta));
      row.addEventListener("click", function () { showAttention(i); });
      list.appendChild(row);
    });
    list.hidden = false;
  }

  // ---- cross-attention ------------------------------------------------------------------------

  function showAttention(i) {
    var r = results[i];
    shown = i;
    document.querySelectorAll("#translations .translation-row").forEach(function (row) {
      row.classList.toggle("chosen", row.getAttribute("data-row") === String(i));
    });
    if (!r.token_ids.length) return Promise.resolve();
    return helpers.api("/api/translate/attention", { text: r.source, token_ids: r.token_ids }).then(function (data) {
      if (shown !== i) return;  // another row was chosen meanwhile
      drawAttention(data, i);
    }).catch(showError);
  }

  function drawAttention(data, i) {
    var box = $("cross-attention");
    box.textContent = "";
    box.setAttribute("data-row", String(i));
    $("cross-attention-card").hidden = false;
    if (!data.weights) {
      box.appendChild(helpers.el("p", "no-attention", "No cross-attention to show: " + data.description + "."));
      $("cross-attention-hint").textContent = "";
      return;
    }
    $("cross-attention-hint").textContent = "Line " + (i + 1) + ": each row is an output token, each column a " +
      "source token; darker = more attention, the darkest the largest weight (" + data.description + "). " +
      "Choose another line above to see its own.";
    box.appendChild(heatmap(data));
  }

  function heatmap(data) {
    var el = helpers.el;
    var table = el("table", "heatmap");
    var head = el("tr");
    head.appendChild(el("th", "corner", "output \u2193 / source \u2192"));
    data.source_tokens.forEach(function (token) { head.appendChild(el("th", "source-token", token)); });
    table.appendChild(el("thead")).appendChild(head);
    var body = table.appendChild(el("tbody"));
    // The colour scale ends at the largest weight, so that a nearly flat attention still shows its shape.
    var top = Math.max.apply(null, data.weights.map(function (row) { return Math.max.apply(null, row); })) || 1;
    data.weights.forEach(function (row, t) {
      var tr = el("tr");
      tr.appendChild(el("th", "output-token", data.output_tokens[t]));
      row.forEach(function (w, s) {
        var shade = w / top;
        var cell = el("td", shade > 0.5 ? "strong" : "", w.toFixed(2));
        cell.style.backgroundColor = "rgba(59, 76, 192, " + shade.toFixed(3) + ")";
        cell.title = data.output_tokens[t] + " \u2192 " + data.source_tokens[s] + ": " + w.toFixed(4);
        tr.appendChild(cell);
      });
      body.appendChild(tr);
    });
    var scroller = el("div", "heatmap-scroll");
    scroller.appendChild(table);
    return scroller;
  }

  function setUp(info, pageHelpers) {
    helpers = pageHelpers;
    var limits = info.limits || {};
    $("translate-max-new-tokens").max = limits.max_new_tokens || "";
    $("translate-num-beams").max = limits.max_beams || "";
    $("source-lines").placeholder = EXAMPLES[info.language] || EXAMPLES.en;
    $("source-lines").maxLength = limits.max_chars * (limits.max_batch || 1);
    $("translate-hint").textContent = "One sentence a line (at most " + limits.max_batch + " lines). Leave it " +
      "empty to run the example; Ctrl+Enter runs. Choose a translation to see its cross-attention.";
    $("translate-strategy").addEventListener("change", showStrategy);
    showStrategy();
    $("translate-form").addEventListener("submit", run);
    $("translate-form").addEventListener("keydown", function (e) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) run(e);
    });
    $("translate-card").hidden = false;
    $("translate").disabled = false;
  }

  return { setUp: setUp };
})();

/*
 * The page of `hanformer serve`: a form for a sentence (or question + context), the model's
 * prediction, and the attention views (HanformerAttention from /assets/attention.js, the same
 * code as the offline HTML of `hanformer attention`). GPT checkpoints get the generation box
 * (generate.js), translation models the translation box (translate.js).
 */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var info = null;

  // What the form asks for, per task.
  var FORMS = {
    "classification": {
      title: "Classify a sentence", text: "Sentence", pair: "Second sentence <em>(optional, for pair tasks)</em>",
      showPair: true
    },
    "regression": {
      title: "Score a sentence", text: "Sentence", pair: "Second sentence <em>(optional, for pair tasks)</em>",
      showPair: true
    },
    "token-classification": { title: "Find the entities in a sentence", text: "Sentence", showPair: false },
    "question-answering": {
      title: "Answer a question from a context", text: "Question", pair: "Context", showPair: true, pairRequired: true
    },
    "fill-mask": { title: "Fill in the blanks", text: "Sentence with [MASK]", showPair: false },
    "embeddings": { title: "Embed a sentence", text: "Sentence", showPair: false }
  };

  // The examples in the fields, in the language of the model's vocabulary (/info `language`).
  // [MASK] stands for the model's own mask token.
  var EXAMPLES = {
    ko: {
      "classification": { text: "이 영화 정말 재미있어요!", pair: "이 영화는 지루했다." },
      "regression": { text: "나는 오늘 학교에 갔다.", pair: "오늘 나는 학교에 다녀왔다." },
      "token-classification": { text: "이순신은 조선 중기의 무신이다." },
      "question-answering": { text: "이순신은 어느 시대의 무신인가?", pair: "이순신은 조선 중기의 무신이다." },
      "fill-mask": { text: "나는 오늘 [MASK]에 갔다." },
      "embeddings": { text: "나는 오늘 학교에 갔다." }
    },
    en: {
      "classification": { text: "I really liked this movie!", pair: "The movie was boring." },
      "regression": { text: "I went to school today.", pair: "Today I went to school." },
      "token-classification": { text: "Yi Sun-sin was a Korean admiral of the Joseon dynasty." },
      "question-answering": { text: "What is the capital of Korea?", pair: "Seoul is the capital of Korea." },
      "fill-mask": { text: "I went to the [MASK] today." },
      "embeddings": { text: "I went to school today." }
    }
  };

  function api(path, body) {
    var options = body === undefined ? {} : {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    };
    return fetch(path, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var err = new Error(data.error || (response.status + " " + response.statusText));
          err.field = data.field;
          throw err;
        }
        return data;
      });
    });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function formatCount(n) {
    if (n >= 1e9) return (n / 1e9).toFixed(1) + "B";
    if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
    if (n >= 1e3) return Math.round(n / 1e3) + "K";
    return String(n);
  }

  function percent(x) { return (100 * x).toFixed(1) + "%"; }

  function bar(label, score, best) {
    var row = el("div", "bar-row" + (best ? " best" : ""));
    row.appendChild(el("span", "bar-label", label));
    var track = el("span", "bar-track");
    var fill = el("span", "bar-fill");
    fill.style.width = Math.max(0, Math.min(100, 100 * score)).toFixed(1) + "%";
    track.appendChild(fill);
    row.appendChild(track);
    row.appendChild(el("span", "bar-value", percent(score)));
    return row;
  }

  // ---- setting up ----------------------------------------------------------------------------

  // The model's size in its own config's words: BERT / GPT-2, the encoder-decoder Transformer, the RNN.
  function shape(cfg) {
    if (cfg.encoder_layers) {
      return cfg.encoder_layers + " + " + cfg.decoder_layers + " layers \u00b7 " +
        cfg.decoder_attention_heads + " heads";
    }
    if (cfg.cell) return cfg.num_layers + " layer " + cfg.cell.toUpperCase() + " \u00b7 " + cfg.attention + " attention";
    return (cfg.num_hidden_layers || cfg.n_layer || "?") + " layers \u00b7 " +
      (cfg.num_attention_heads || cfg.n_head || "?") + " heads";
  }

  function setUp(data) {
    info = data;
    var form = FORMS[info.task] || FORMS.embeddings;
    var example = (EXAMPLES[info.language] || EXAMPLES.en)[FORMS[info.task] ? info.task : "embeddings"];
    var line = $("model-line");
    line.textContent = "";
    line.appendChild(el("strong", "", info.name));
    var task = info.task_name && info.task_name !== info.task ? info.task + " \u00b7 " + info.task_name : info.task;
    line.appendChild(el("span", "badge", task));
    line.appendChild(el("span", "dim", shape(info.config || {}) + " \u00b7 " + formatCount(info.parameters) +
                        " parameters"));
    // Only the endpoints this checkpoint answers.
    $("foot").textContent = "hanformer " + info.version + " \u00b7 JSON API: /info, " + info.endpoints.join(", ");
    if (info.causal_lm) {
      // A GPT checkpoint: the generation box (generate.js) instead of the encoder's form.
      $("try").hidden = true;
      HanformerGenerate.setUp(info);
      return;
    }
    if (info.task === "translation") {
      $("try").hidden = true;
      HanformerTranslate.setUp(info, { api: api, el: el });
      return;
    }

    $("form-title").textContent = form.title;
    $("text-label").textContent = form.text;
    $("text").placeholder = example.text.replace("[MASK]", info.mask_token || "[MASK]");
    $("pair-field").hidden = !form.showPair;
    if (form.showPair) {
      // A checkpoint fine-tuned on sentence pairs (NLI, similarity) needs the second sentence.
      $("pair-label").innerHTML = info.pair ? "Second sentence" : form.pair;
      // The example fills an empty field only where a second text is needed.
      $("pair").placeholder = (info.pair || info.task === "question-answering") ? example.pair || "" : "";
      if (form.pairRequired) $("pair").rows = 5;
    }
    var hint = "";
    if (info.labels) hint = "Labels: " + info.labels.join(", ") + ".";
    if (info.task === "fill-mask") hint = "Write " + info.mask_token + " where a word should go; the model proposes the top 5.";
    if (info.task === "embeddings") hint = "This checkpoint has no task head: it shows the sentence vector and the attention.";
    $("form-hint").textContent = hint + " Leave a field empty to run the example; Ctrl+Enter runs.";
    $("text").maxLength = info.limits.max_chars;
    $("pair").maxLength = info.limits.max_chars;
    $("submit").disabled = false;
  }

  // ---- running --------------------------------------------------------------------------------

  function predictRequest(text, pair) {
    if (info.task === "fill-mask") return api("/api/fill-mask", { texts: [text], top_k: 5 });
    if (info.task === "embeddings") return api("/api/embeddings", { texts: [text] });
    var body = { texts: [text] };
    if (pair) body.pairs = [pair];
    return api("/api/predict", body);
  }

  function run(event) {
    if (event) event.preventDefault();
    var text = $("text").value.trim() || $("text").placeholder;
    var pair = $("pair-field").hidden ? "" : ($("pair").value.trim() || $("pair").placeholder);
    if (!$("text").value.trim()) $("text").value = text;
    if (pair && !$("pair").value.trim() && !$("pair-field").hidden) $("pair").value = pair;
    showError(null);
    $("submit").disabled = true;
    $("status").textContent = "Running\u2026";
    var attentionBody = { text: text, packed: true };
    if (pair) attentionBody.pair = pair;
    var started = performance.now();
    var prediction = predictRequest(text, pair).then(function (data) {
      showPrediction(data, text, pair);
    }).catch(function (err) {
      $("prediction-card").hidden = true;
      showError(err);
    });
    var attention = api("/api/attention", attentionBody).then(showAttention, function (err) {
      $("attention-card").hidden = true;
      showError(err);
    });
    return Promise.all([prediction, attention]).catch(showError).then(function () {
      $("submit").disabled = false;
      if ($("error").hidden) {
        $("status").textContent = "Done in " + Math.round(performance.now() - started) + " ms";
      }
    });
  }

  function showError(err) {
    var box = $("error");
    if (!err) { box.hidden = true; box.textContent = ""; return; }
    box.hidden = false;
    box.textContent = err.message;
    $("status").textContent = "";
  }

  function showAttention(data) {
    $("attention-card").hidden = false;
    HanformerAttention.mount($("attention"), data, {});
  }

  // ---- predictions, per task ----------------------------------------------------------------

  function showPrediction(data, text, pair) {
    var box = $("prediction");
    box.textContent = "";
    var result = (data.results || [])[0];
    if (info.task === "classification" || info.task === "regression") renderClassification(box, result);
    else if (info.task === "token-classification") renderEntities(box, result, text);
    else if (info.task === "question-answering") renderAnswer(box, result, pair);
    else if (info.task === "fill-mask") renderFillMask(box, result);
    else renderEmbedding(box, data);
    $("prediction-card").hidden = false;
  }

  function renderClassification(box, r) {
    if (r.label === undefined) {  // a regression head
      box.appendChild(el("div", "headline", "Score " + r.score.toFixed(4)));
      return;
    }
    var head = el("div", "headline");
    head.appendChild(el("span", "label-pill", r.label));
    head.appendChild(el("span", "dim", percent(r.probability)));
    box.appendChild(head);
    var bars = el("div", "bars");
    var p = r.probabilities;
    Object.keys(p).sort(function (a, b) { return p[b] - p[a]; }).forEach(function (name) {
      bars.appendChild(bar(name, p[name], name === r.label));
    });
    box.appendChild(bars);
  }

  function entityColour(type) {
    var hue = 0;
    for (var i = 0; i < type.length; i++) hue = (hue * 31 + type.charCodeAt(i)) % 360;
    return "hsl(" + hue + ", 70%, 88%)";
  }

  function renderEntities(box, r, text) {
    var para = el("p", "tagged");
    var at = 0;
    r.entities.forEach(function (ent) {
      para.appendChild(document.createTextNode(text.slice(at, ent.start)));
      var mark = el("mark", "entity");
      mark.style.background = entityColour(ent.type);
      mark.appendChild(document.createTextNode(text.slice(ent.start, ent.end)));
      mark.appendChild(el("span", "entity-type", ent.type));
      para.appendChild(mark);
      at = ent.end;
    });
    para.appendChild(document.createTextNode(text.slice(at)));
    box.appendChild(para);
    box.appendChild(el("p", "dim", r.entities.length ? r.entities.length + " entities" : "No entities found."));
  }

  function renderAnswer(box, r, context) {
    var head = el("div", "headline");
    head.appendChild(el("span", "answer", r.answer || "(no answer)"));
    head.appendChild(el("span", "dim", percent(r.probability)));
    box.appendChild(head);
    var para = el("p", "tagged");
    para.appendChild(document.createTextNode(context.slice(0, r.start)));
    para.appendChild(el("mark", "entity", context.slice(r.start, r.end)));
    para.appendChild(document.createTextNode(context.slice(r.end)));
    box.appendChild(para);
    if (r.n_best && r.n_best.length > 1) {
      box.appendChild(el("div", "dim", "Other candidates"));
      var bars = el("div", "bars");
      r.n_best.slice(1).forEach(function (c) { bars.appendChild(bar(c.text, c.probability, false)); });
      box.appendChild(bars);
    }
  }

  function renderFillMask(box, r) {
    r.masks.forEach(function (m, k) {
      var group = el("div", "mask-group");
      group.appendChild(el("div", "dim", (r.masks.length > 1 ? "Mask " + (k + 1) + " \u00b7 " : "") +
                                          "\u201c" + m.candidates[0].sequence + "\u201d"));
      var bars = el("div", "bars");
      m.candidates.forEach(function (c, i) { bars.appendChild(bar(c.token, c.score, i === 0)); });
      group.appendChild(bars);
      box.appendChild(group);
    });
  }

  function renderEmbedding(box, data) {
    var v = data.embeddings[0];
    box.appendChild(el("div", "headline", "A " + data.dim + "-dimensional vector (mean of the token vectors, unit length)"));
    box.appendChild(el("code", "vector", "[" + v.slice(0, 8).map(function (x) { return x.toFixed(4); }).join(", ") +
                                        (v.length > 8 ? ", \u2026" : "") + "]"));
  }

  // ---- start -----------------------------------------------------------------------------------

  $("submit").disabled = true;
  $("form").addEventListener("submit", run);
  $("form").addEventListener("keydown", function (e) {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) run(e);
  });
  api("/info").then(setUp, function (err) {
    $("model-line").textContent = "could not reach the server";
    showError(err);
  });
})();

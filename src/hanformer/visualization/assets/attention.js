/*
 * Attention views for hanformer: a head view and a model view, in plain JavaScript + SVG/canvas.
 *
 * One file serves both the self-contained HTML written by `hanformer attention` and the page of
 * `hanformer serve`. Both call:
 *
 *     HanformerAttention.mount(containerElement, data, {layer, heads, mode, view})
 *
 * where `data` is `AttentionData.to_dict()` from Python: tokens, type_ids, special_mask and three
 * tensors (attentions [layers, heads, seq, seq], mean and rollout [layers, seq, seq]), each either
 * nested arrays of numbers or {encoding: "uint8-base64", scale, shape, data}.
 *
 * People read layers, heads and tokens numbered from 1 ("layer 1" is the first), as in the report
 * of `hanformer run`. The data, the options of mount() (`layer`, `heads`) and the data-* attributes
 * are indices from 0, as in Python, the JSON API and the `--layer`/`--heads` flags.
 */
(function (global) {
  "use strict";

  var SVG_NS = "http://www.w3.org/2000/svg";
  // Distinct, colour-blind-friendlier hues first; more heads get evenly spaced hues.
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                 "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#393b79", "#ad494a",
                 "#637939", "#8c6d31", "#7b4173", "#3182bd"];
  var AGGREGATE_COLOUR = "#3b4cc0";
  var MIN_LINE_WEIGHT = 0.01; // lines fainter than this are invisible anyway; skipping them keeps big inputs fast
  var TOKEN_HEIGHT = 22;

  // The number people read for index i (layers, heads, tokens).
  function shown(i) { return String(i + 1); }

  function headColour(h, numHeads) {
    if (numHeads <= PALETTE.length) return PALETTE[h];
    return "hsl(" + Math.round((360 * h) / numHeads) + ", 65%, 45%)";
  }

  // ---- data -------------------------------------------------------------------------------

  function flatten(nested, out) {
    for (var i = 0; i < nested.length; i++) {
      if (Array.isArray(nested[i])) flatten(nested[i], out); else out.push(nested[i]);
    }
    return out;
  }

  function shapeOf(nested) {
    var shape = [];
    var x = nested;
    while (Array.isArray(x)) { shape.push(x.length); x = x[0]; }
    return shape;
  }

  /** A tensor from the JSON form (packed bytes or nested arrays) -> {values: Float32Array, shape}. */
  function decodeTensor(t) {
    if (Array.isArray(t)) {
      return { values: Float32Array.from(flatten(t, [])), shape: shapeOf(t) };
    }
    if (t && t.encoding === "uint8-base64") {
      var raw = global.atob(t.data);
      var values = new Float32Array(raw.length);
      var scale = t.scale || 255;
      for (var i = 0; i < raw.length; i++) values[i] = raw.charCodeAt(i) / scale;
      return { values: values, shape: t.shape };
    }
    throw new Error("unknown attention tensor format");
  }

  /** Validate and decode `data` once; the views then read weights through `weight()`. */
  function prepare(data) {
    var tokens = data.tokens || [];
    var att = decodeTensor(data.attentions);
    var mean = decodeTensor(data.mean);
    var rollout = decodeTensor(data.rollout);
    var L = att.shape[0], H = att.shape[1], S = att.shape[2];
    if (S !== tokens.length) {
      throw new Error(tokens.length + " tokens but attention over " + S + " positions");
    }
    return {
      tokens: tokens,
      typeIds: data.type_ids || tokens.map(function () { return 0; }),
      special: data.special_mask || tokens.map(function () { return false; }),
      L: L, H: H, S: S,
      att: att.values, mean: mean.values, rollout: rollout.values
    };
  }

  /** Weight from token i to token j in layer l; `head` is a head index, "mean" or "rollout". */
  function weight(d, l, head, i, j) {
    if (head === "mean") return d.mean[(l * d.S + i) * d.S + j];
    if (head === "rollout") return d.rollout[(l * d.S + i) * d.S + j];
    return d.att[((l * d.H + head) * d.S + i) * d.S + j];
  }

  // ---- small DOM helpers ----------------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function svg(tag, attrs) {
    var node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    return node;
  }

  function setAttrs(node, attrs) {
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "className") node.setAttribute("class", attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
  }

  var measureCanvas = null;
  function textWidth(text, font) {
    measureCanvas = measureCanvas || document.createElement("canvas");
    var ctx = measureCanvas.getContext("2d");
    ctx.font = font;
    return ctx.measureText(text).width;
  }

  function hexToRgb(colour) {
    // Accepts "#rrggbb" or "hsl(h, s%, l%)" via the browser's own parser on a canvas.
    var ctx = (measureCanvas = measureCanvas || document.createElement("canvas")).getContext("2d");
    ctx.fillStyle = "#000";
    ctx.fillStyle = colour;
    var hex = ctx.fillStyle; // normalised to #rrggbb
    return [parseInt(hex.slice(1, 3), 16), parseInt(hex.slice(3, 5), 16), parseInt(hex.slice(5, 7), 16)];
  }

  // ---- the widget ---------------------------------------------------------------------------

  function mount(container, data, options) {
    var d = prepare(data);
    options = options || {};
    var state = {
      view: options.view === "model" ? "model" : "head",
      layer: clampInt(options.layer, 0, d.L - 1, d.L - 1),
      mode: ["heads", "mean", "rollout"].indexOf(options.mode) >= 0 ? options.mode : "heads",
      heads: normaliseHeads(options.heads, d.H),
      focus: null,   // {side: "from"|"to", index} while hovering a token
      pinned: null   // the same, fixed by a click
    };

    container.innerHTML = "";
    var root = el("div", { className: "hfa" });
    container.appendChild(root);

    // Toolbar: view tabs, layer, what to show.
    var tabs = el("div", { className: "hfa-tabs", role: "tablist" });
    var tabButtons = {};
    [["head", "Head view"], ["model", "Model view"]].forEach(function (pair) {
      var b = el("button", { type: "button", role: "tab", "data-view": pair[0], text: pair[1] });
      b.addEventListener("click", function () { update({ view: pair[0] }); });
      tabButtons[pair[0]] = b;
      tabs.appendChild(b);
    });

    var layerSelect = el("select", { className: "hfa-layer", "aria-label": "layer" });
    for (var l = 0; l < d.L; l++) layerSelect.appendChild(el("option", { value: String(l), text: shown(l) }));
    layerSelect.addEventListener("change", function () { update({ layer: parseInt(layerSelect.value, 10) }); });

    var modeButtons = {};
    var modes = el("div", { className: "hfa-segmented", role: "group", "aria-label": "aggregation" });
    [["heads", "Heads"], ["mean", "Mean of heads"], ["rollout", "Rollout"]].forEach(function (pair) {
      var b = el("button", { type: "button", "data-mode": pair[0], text: pair[1] });
      b.title = {
        heads: "Lines for each selected head, in that head's colour",
        mean: "The average of all heads of this layer",
        rollout: "Attention rollout: how much each token after this layer draws on each input token, through all layers below"
      }[pair[0]];
      b.addEventListener("click", function () { update({ mode: pair[0] }); });
      modeButtons[pair[0]] = b;
      modes.appendChild(b);
    });

    var toolbar = el("div", { className: "hfa-toolbar" }, [
      tabs,
      el("label", { className: "hfa-field" }, ["Layer ", layerSelect]),
      el("div", { className: "hfa-field" }, [el("span", { text: "Show " }), modes])
    ]);
    root.appendChild(toolbar);

    // Head chips: toggle any set of heads.
    var chipRow = el("div", { className: "hfa-heads", role: "group", "aria-label": "heads" });
    chipRow.appendChild(el("span", { className: "hfa-label", text: "Heads" }));
    var chips = [];
    for (var h = 0; h < d.H; h++) {
      (function (head) {
        var colour = headColour(head, d.H);
        var chip = el("button", { type: "button", className: "hfa-chip", "data-head": String(head),
                                  title: "head " + shown(head) + " (click to toggle, double-click for only this head)" });
        chip.style.setProperty("--chip", colour);
        chip.textContent = shown(head);
        chip.addEventListener("click", function () {
          var set = state.heads.slice();
          var at = set.indexOf(head);
          if (at >= 0) set.splice(at, 1); else set.push(head);
          update({ heads: set.sort(function (a, b) { return a - b; }), mode: "heads" });
        });
        chip.addEventListener("dblclick", function () { update({ heads: [head], mode: "heads" }); });
        chips.push(chip);
        chipRow.appendChild(chip);
      })(h);
    }
    var allButton = el("button", { type: "button", className: "hfa-link", text: "all" });
    allButton.addEventListener("click", function () { update({ heads: range(d.H), mode: "heads" }); });
    var noneButton = el("button", { type: "button", className: "hfa-link", text: "none" });
    noneButton.addEventListener("click", function () { update({ heads: [], mode: "heads" }); });
    chipRow.appendChild(allButton);
    chipRow.appendChild(noneButton);
    root.appendChild(chipRow);

    var caption = el("p", { className: "hfa-caption" });
    root.appendChild(caption);

    var headPane = el("div", { className: "hfa-head-view" });
    var modelPane = el("div", { className: "hfa-model-view" });
    root.appendChild(headPane);
    root.appendChild(modelPane);

    var headView = buildHeadView(headPane, d, state, function (focus) { update({ focus: focus }); },
                                 function (focus) { update({ pinned: samePlace(state.pinned, focus) ? null : focus }); });
    var modelView = buildModelView(modelPane, d, function (pick) {
      update({ view: "head", layer: pick.layer, mode: pick.mode,
               heads: pick.head === undefined ? state.heads : [pick.head] });
    });

    function update(changes) {
      Object.keys(changes).forEach(function (k) { state[k] = changes[k]; });
      render();
    }

    function render() {
      Object.keys(tabButtons).forEach(function (v) {
        tabButtons[v].classList.toggle("active", state.view === v);
        tabButtons[v].setAttribute("aria-selected", String(state.view === v));
      });
      Object.keys(modeButtons).forEach(function (m) { modeButtons[m].classList.toggle("active", state.mode === m); });
      layerSelect.value = String(state.layer);
      chips.forEach(function (chip, head) {
        chip.classList.toggle("on", state.mode === "heads" && state.heads.indexOf(head) >= 0);
      });
      headPane.hidden = state.view !== "head";
      modelPane.hidden = state.view !== "model";
      chipRow.classList.toggle("muted", state.mode !== "heads" || state.view !== "head");
      caption.textContent = describe(state, d);
      if (state.view === "head") headView.draw(state);
      modelView.highlight(state);
    }

    render();
    return {
      state: function () { return JSON.parse(JSON.stringify(state)); },
      set: update
    };
  }

  function describe(state, d) {
    if (state.view === "model") {
      return "Every layer (rows) \u00d7 head (columns), then the mean of the heads and the rollout: row i of a map " +
             "is what token i attends to; darker = more. Click a map to open it in the head view.";
    }
    var what;
    if (state.mode === "mean") what = "mean of all " + d.H + " heads";
    else if (state.mode === "rollout") what = "attention rollout through layers 1\u2013" + shown(state.layer);
    else if (!state.heads.length) what = "no heads selected";
    else if (state.heads.length === d.H) what = "all " + d.H + " heads";
    else what = (state.heads.length === 1 ? "head " : "heads ") + state.heads.map(shown).join(", ");
    var hint = state.pinned
      ? "Pinned to \u201c" + d.tokens[state.pinned.index] + "\u201d; click it again to unpin."
      : "Hover a token to isolate its attention; click to pin it.";
    return "Layer " + shown(state.layer) + ", " + what + ". " + hint;
  }

  // ---- head view: tokens on two sides, lines weighted by attention ----------------------------

  // Lines go on a canvas under the SVG tokens: a long input has tens of thousands of lines, which
  // a canvas draws in milliseconds and SVG elements in seconds. The canvas records what it drew
  // (data-lines, data-colours) so tests and scripts can check it.
  function buildHeadView(pane, d, state, onHover, onPin) {
    var font = "13px " + getComputedStyle(pane).fontFamily;
    var widest = 0;
    d.tokens.forEach(function (t) { widest = Math.max(widest, textWidth(t, font)); });
    var colWidth = Math.ceil(Math.max(110, widest + 20));
    // The lines get what is left of the pane's width, between 80 and 240 px: the view fits a phone,
    // and scrolls inside its pane when even that is too wide.
    var available = pane.clientWidth || (pane.parentNode && pane.parentNode.clientWidth) || 0;
    var gap = available ? Math.max(80, Math.min(240, available - 2 * colWidth)) : 240;
    var top = 28;
    var width = colWidth * 2 + gap;
    var height = top + d.S * TOKEN_HEIGHT + 8;

    var stage = el("div", { className: "hfa-stage" });
    stage.style.width = width + "px";
    stage.style.height = height + "px";
    var ratio = global.devicePixelRatio || 1;
    var canvas = el("canvas", { className: "hfa-lines", width: String(Math.round(gap * ratio)),
                                height: String(Math.round(height * ratio)) });
    canvas.style.left = colWidth + "px";
    canvas.style.width = gap + "px";
    canvas.style.height = height + "px";
    var ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    ctx.lineCap = "round";

    var root = svg("svg", { width: width, height: height, viewBox: "0 0 " + width + " " + height,
                            className: "hfa-svg", role: "img", "aria-label": "attention head view" });
    root.appendChild(svg("text", { x: colWidth - 8, y: 16, "text-anchor": "end", className: "hfa-axis",
                                   text: "attends from" }));
    root.appendChild(svg("text", { x: colWidth + gap + 8, y: 16, className: "hfa-axis", text: "to" }));

    function tokenColumn(side) {
      var group = svg("g", { className: "hfa-tokens hfa-" + side });
      var cells = [];
      d.tokens.forEach(function (tok, i) {
        var y = top + i * TOKEN_HEIGHT;
        var x = side === "from" ? 0 : colWidth + gap;
        var g = svg("g", { className: "hfa-token" + (d.special[i] ? " special" : "") + (d.typeIds[i] ? " seg-b" : ""),
                           "data-side": side, "data-index": String(i) });
        var bar = svg("rect", { x: x, y: y + 1, width: colWidth, height: TOKEN_HEIGHT - 2, rx: 3, className: "hfa-bar" });
        var label = svg("text", { x: side === "from" ? colWidth - 8 : x + 8, y: y + TOKEN_HEIGHT / 2 + 4.5,
                                  "text-anchor": side === "from" ? "end" : "start", text: tok });
        var title = svg("title", { text: tok + "  (token " + shown(i) + ", segment " + (d.typeIds[i] ? "B" : "A") + ")" });
        g.appendChild(bar); g.appendChild(label); g.appendChild(title);
        g.addEventListener("mouseenter", function () { onHover({ side: side, index: i }); });
        g.addEventListener("mouseleave", function () { onHover(null); });
        g.addEventListener("click", function () { onPin({ side: side, index: i }); });
        group.appendChild(g);
        cells.push({ g: g, bar: bar, title: title });
      });
      root.appendChild(group);
      return cells;
    }
    var fromCells = tokenColumn("from");
    var toCells = tokenColumn("to");
    stage.appendChild(canvas);
    stage.appendChild(root);
    pane.appendChild(stage);

    function draw(st) {
      var focus = st.focus || st.pinned;
      var heads = st.mode === "heads" ? st.heads : [st.mode];
      var l = st.layer;
      var count = 0;
      var colours = [];
      ctx.clearRect(0, 0, gap, height);
      ctx.lineWidth = focus ? 2.5 : 2;
      heads.forEach(function (head) {
        var colour = head === "mean" || head === "rollout" ? AGGREGATE_COLOUR : headColour(head, d.H);
        ctx.strokeStyle = colour;
        var drawn = 0;
        for (var i = 0; i < d.S; i++) {
          if (focus && focus.side === "from" && focus.index !== i) continue;
          for (var j = 0; j < d.S; j++) {
            if (focus && focus.side === "to" && focus.index !== j) continue;
            var w = weight(d, l, head, i, j);
            if (w < MIN_LINE_WEIGHT) continue;
            ctx.globalAlpha = Math.min(1, w);
            ctx.beginPath();
            ctx.moveTo(0, top + i * TOKEN_HEIGHT + TOKEN_HEIGHT / 2);
            ctx.lineTo(gap, top + j * TOKEN_HEIGHT + TOKEN_HEIGHT / 2);
            ctx.stroke();
            drawn++;
          }
        }
        if (drawn) colours.push(colour);
        count += drawn;
      });
      ctx.globalAlpha = 1;
      canvas.setAttribute("data-lines", String(count));
      canvas.setAttribute("data-colours", colours.join(" "));

      // Bars behind the tokens on the other side show the (head-averaged) weight of the focus.
      fromCells.concat(toCells).forEach(function (c) {
        c.bar.style.fillOpacity = 0;
        c.g.classList.remove("focus");
      });
      if (!focus || !heads.length) return;
      var cells = focus.side === "from" ? toCells : fromCells;
      (focus.side === "from" ? fromCells : toCells)[focus.index].g.classList.add("focus");
      var single = heads.length === 1 ? (typeof heads[0] === "number" ? headColour(heads[0], d.H) : AGGREGATE_COLOUR) : AGGREGATE_COLOUR;
      cells.forEach(function (c, k) {
        var total = 0;
        heads.forEach(function (head) {
          total += focus.side === "from" ? weight(d, l, head, focus.index, k) : weight(d, l, head, k, focus.index);
        });
        var w = total / heads.length;
        c.bar.style.fill = single;
        c.bar.style.fillOpacity = Math.min(0.85, w).toFixed(3);
        c.title.textContent = d.tokens[k] + "  (token " + shown(k) + ", weight " + w.toFixed(3) + ")";
      });
    }

    return { draw: draw };
  }

  // ---- model view: every layer x head as a small map -------------------------------------------

  function buildModelView(pane, d, onPick) {
    var columns = d.H + 2; // the heads, then mean and rollout
    var available = Math.max(pane.clientWidth || 0, (pane.parentNode && pane.parentNode.clientWidth) || 0) || 600;
    var cell = Math.max(40, Math.min(96, Math.floor((available - 60) / columns) - 6));
    var grid = el("div", { className: "hfa-grid" });
    grid.style.gridTemplateColumns = "3em repeat(" + d.H + ", " + cell + "px) 10px repeat(2, " + cell + "px)";
    grid.appendChild(el("div", { className: "hfa-corner", text: "layer" }));
    for (var h = 0; h < d.H; h++) grid.appendChild(el("div", { className: "hfa-colhead", text: "head " + shown(h) }));
    grid.appendChild(el("div"));
    grid.appendChild(el("div", { className: "hfa-colhead", text: "mean" }));
    grid.appendChild(el("div", { className: "hfa-colhead", text: "rollout" }));

    var cells = [];
    for (var l = 0; l < d.L; l++) {
      grid.appendChild(el("div", { className: "hfa-rowhead", text: shown(l) }));
      for (var hh = 0; hh < d.H; hh++) grid.appendChild(mapCell(l, hh, headColour(hh, d.H), "heads"));
      grid.appendChild(el("div"));
      grid.appendChild(mapCell(l, "mean", AGGREGATE_COLOUR, "mean"));
      grid.appendChild(mapCell(l, "rollout", AGGREGATE_COLOUR, "rollout"));
    }
    pane.appendChild(grid);

    function mapCell(layer, head, colour, mode) {
      var canvas = el("canvas", { width: String(d.S), height: String(d.S), className: "hfa-map",
                                  "data-layer": String(layer), "data-head": String(head) });
      canvas.style.width = cell + "px";
      canvas.style.height = cell + "px";
      canvas.title = "layer " + shown(layer) + ", " + (typeof head === "number" ? "head " + shown(head) : head) +
                     " \u2014 click to open";
      paint(canvas, layer, head, colour);
      canvas.addEventListener("click", function () {
        onPick({ layer: layer, mode: mode, head: typeof head === "number" ? head : undefined });
      });
      cells.push({ canvas: canvas, layer: layer, head: head });
      return canvas;
    }

    function paint(canvas, layer, head, colour) {
      var ctx = canvas.getContext("2d");
      var img = ctx.createImageData(d.S, d.S);
      var rgb = hexToRgb(colour);
      for (var i = 0; i < d.S; i++) {
        for (var j = 0; j < d.S; j++) {
          var w = Math.min(1, weight(d, layer, head, i, j));
          var p = (i * d.S + j) * 4;
          // Blend from white to the head's colour.
          img.data[p] = Math.round(255 + (rgb[0] - 255) * w);
          img.data[p + 1] = Math.round(255 + (rgb[1] - 255) * w);
          img.data[p + 2] = Math.round(255 + (rgb[2] - 255) * w);
          img.data[p + 3] = 255;
        }
      }
      ctx.putImageData(img, 0, 0);
    }

    function highlight(st) {
      cells.forEach(function (c) {
        var on = c.layer === st.layer && (
          (st.mode === "heads" && typeof c.head === "number" && st.heads.indexOf(c.head) >= 0) ||
          (st.mode === c.head));
        c.canvas.classList.toggle("selected", on);
      });
    }

    return { highlight: highlight };
  }

  // ---- little helpers ---------------------------------------------------------------------------

  function range(n) { var out = []; for (var i = 0; i < n; i++) out.push(i); return out; }

  function clampInt(value, lo, hi, fallback) {
    var v = parseInt(value, 10);
    if (isNaN(v)) return fallback;
    return Math.max(lo, Math.min(hi, v));
  }

  function normaliseHeads(heads, H) {
    if (!Array.isArray(heads) || !heads.length) return range(H);
    var out = heads.map(function (h) { return parseInt(h, 10); })
                   .filter(function (h) { return !isNaN(h) && h >= 0 && h < H; });
    return out.length ? out : range(H);
  }

  function samePlace(a, b) { return !!a && !!b && a.side === b.side && a.index === b.index; }

  global.HanformerAttention = { mount: mount, decodeTensor: decodeTensor, headColour: headColour };
})(window);

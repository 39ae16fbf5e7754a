"use strict";
// s2s-eval report: sample filters and the per-sample drill-down. Vanilla JS, no network, no HTML parsing:
// every piece of run data reaches the page through textContent or a media src built from a relative path.
(function () {
  var dataNode = document.getElementById("s2s-data");
  var table = document.getElementById("sample-table");
  if (!dataNode || !table) { return; }
  var data = JSON.parse(dataNode.textContent);
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var columns = table.tHead.rows[0].cells.length;
  var controls = {
    model: document.getElementById("f-model"),
    eval: document.getElementById("f-eval"),
    category: document.getElementById("f-category"),
    verdict: document.getElementById("f-verdict"),
    text: document.getElementById("f-text")
  };
  var counter = document.getElementById("f-count");
  var searchText = rows.map(function (row) { return row.textContent.toLowerCase(); });
  rows.forEach(function (row) {  // set here rather than in the HTML: thousands of rows, fewer bytes
    var button = row.querySelector("button.more");
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("aria-label", "details of " + row.cells[1].textContent);
  });

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function state() {
    return {
      model: controls.model.value, eval: controls.eval.value, category: controls.category.value,
      verdict: controls.verdict.value, text: controls.text.value.trim().toLowerCase()
    };
  }

  function apply() {
    var s = state();
    var shown = 0;
    rows.forEach(function (row, i) {
      var d = row.dataset;
      var visible = (!s.model || d.m === s.model) && (!s.eval || d.e === s.eval) &&
        (!s.category || d.c === s.category) && (!s.verdict || d.v === s.verdict) &&
        (!s.text || searchText[i].indexOf(s.text) !== -1);
      row.hidden = !visible;
      var next = row.nextElementSibling;
      if (next && next.classList.contains("drill")) { next.hidden = !visible; }
      if (visible) { shown += 1; }
    });
    counter.textContent = shown.toLocaleString("en-US") + " of " + rows.length.toLocaleString("en-US") + " samples";
    writeHash();
  }

  function writeHash() {
    var s = state();
    var parts = [];
    Object.keys(s).forEach(function (key) {
      if (s[key]) { parts.push(encodeURIComponent(key) + "=" + encodeURIComponent(s[key])); }
    });
    var open = table.querySelectorAll("tr.drill");
    if (open.length) { parts.push("open=" + open[0].previousElementSibling.dataset.i); }
    var url = parts.length ? "#" + parts.join("&") : location.pathname + location.search;
    try { history.replaceState(null, "", url); } catch (e) {
      // Some viewers refuse to rewrite the URL; the filters still work without it.
    }
  }

  function readHash() {
    var wanted = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (pair) {
      var at = pair.indexOf("=");
      if (at > 0) { wanted[decodeURIComponent(pair.slice(0, at))] = decodeURIComponent(pair.slice(at + 1)); }
    });
    Object.keys(controls).forEach(function (key) {
      if (wanted[key] === undefined) { return; }
      var control = controls[key];
      if (control.tagName === "SELECT" && !Array.prototype.some.call(control.options, function (o) {
        return o.value === wanted[key];
      })) { return; }
      control.value = wanted[key];
    });
    return wanted.open;
  }

  function fact(list, name, value) {
    if (value === undefined || value === null || value === "") { return; }
    list.appendChild(el("dt", null, name));
    list.appendChild(el("dd", null, value));
  }

  function player(title, src, note) {
    var box = el("div", "player");
    box.appendChild(el("div", "sub", title));
    if (src) {
      var audio = el("audio");
      audio.controls = true;
      audio.preload = "none";
      audio.src = src;
      box.appendChild(audio);
    } else {
      box.appendChild(el("div", "na", note || "not available"));
    }
    return box;
  }

  function timeline(events) {
    var box = el("div", "timeline");
    if (!events || !events.length) {
      box.appendChild(el("div", "na", "no event timeline recorded"));
      return box;
    }
    var end = events[events.length - 1][1] || 1;
    var track = el("div", "track");
    events.forEach(function (event) {
      var tick = el("span", "tick");
      tick.style.left = Math.min(100, Math.max(0, 100 * event[1] / end)) + "%";
      tick.title = data.events[event[0]] + " · " + event[1] + " ms";
      track.appendChild(tick);
    });
    box.appendChild(track);
    var list = el("table", "events");
    var body = el("tbody");
    events.forEach(function (event) {
      var tr = el("tr");
      tr.appendChild(el("td", "num", event[1].toLocaleString("en-US") + " ms"));
      tr.appendChild(el("td", "mono", data.events[event[0]]));
      body.appendChild(tr);
    });
    list.appendChild(body);
    box.appendChild(list);
    return box;
  }

  function drill(row) {
    var d = data.samples[Number(row.dataset.i)] || {};
    var notes = data.notes[Number(row.dataset.m)] || {};
    var tr = el("tr", "drill");
    var td = el("td");
    td.colSpan = columns;
    var grid = el("div", "drill-grid");

    var left = el("div");
    left.appendChild(el("h3", null, "Audio"));
    left.appendChild(player("Input: the spoken question", d["in"], d.in_note || notes["in"]));
    left.appendChild(player("Output: the model's answer", d.out, d.out_note || notes.out));
    left.appendChild(el("h3", null, "Verdict"));
    var facts = el("dl", "facts");
    fact(facts, "verdict", row.dataset.v);
    var grade = d.grade || {};
    fact(facts, "reason", grade.reason);
    fact(facts, "extracted", grade.extracted);
    var target = row.querySelector("td.target");
    fact(facts, "target", target && !target.querySelector(".na") ? target.textContent.trim() : "");
    if (grade.metrics) {
      Object.keys(grade.metrics).forEach(function (k) { fact(facts, k, grade.metrics[k]); });
    }
    fact(facts, "error", d.error);
    fact(facts, "attempts", d.attempts);
    (d.attempt_errors || []).forEach(function (e, i) { fact(facts, "retry " + (i + 1), e); });
    (d.trials || []).forEach(function (t, i) {
      fact(facts, "try " + (i + 1), (t.correct === true ? "correct" : t.correct === false ? "incorrect" :
        "ungraded") + (t.reason ? " · " + t.reason : ""));
    });
    var lat = d.latency || {};
    Object.keys(lat).forEach(function (k) { fact(facts, k, lat[k] + " ms"); });
    if (d.tokens) { fact(facts, "tokens in / out", (d.tokens["in"] || 0) + " / " + (d.tokens.out || 0)); }
    fact(facts, "cost (USD)", d.cost_usd);
    fact(facts, "ASR WER", d.asr_wer);
    left.appendChild(facts);
    if (grade.details) {
      left.appendChild(el("h3", null, "Grader details"));
      left.appendChild(el("pre", "details", grade.details));
    }

    var right = el("div");
    right.appendChild(el("h3", null, "Transcript"));
    var responses = d.responses || [];
    if (responses.length) {
      responses.forEach(function (r) {
        var block = el("div", "response");
        block.appendChild(el("div", "sub", "turn " + (r.turn === undefined ? "?" : r.turn)));
        if (r.text) { block.appendChild(el("div", "text", r.text)); }
        (r.calls || []).forEach(function (c) { block.appendChild(el("div", "mono call", "→ " + c)); });
        right.appendChild(block);
      });
    } else {
      var text = row.querySelector("td.text .clamp");
      right.appendChild(el("div", "text", text ? text.textContent : "no transcript"));
    }
    right.appendChild(el("h3", null, "Event timeline (ms from time zero)"));
    right.appendChild(timeline(d.timeline));
    if (d.dynamics) {
      var dyn = d.dynamics;
      var box = el("div", "dynamics-drill");
      box.appendChild(el("h3", null, "Conversational dynamics" + (dyn.scenario ? " · " + dyn.scenario : "")));
      var dynFacts = el("dl", "facts");
      fact(dynFacts, "verdict", dyn.verdict);
      var measured = dyn.facts || {};
      Object.keys(measured).forEach(function (k) {
        fact(dynFacts, k, /_ms$/.test(k) ? measured[k] + " ms" : measured[k]);
      });
      box.appendChild(dynFacts);
      box.appendChild(el("h3", null, "Scenario timeline (ms from the caller's first frame)"));
      box.appendChild(timeline(dyn.timeline));
      right.appendChild(box);
    }

    grid.appendChild(left);
    grid.appendChild(right);
    td.appendChild(grid);
    tr.appendChild(td);
    return tr;
  }

  function toggle(row, open) {
    var next = row.nextElementSibling;
    var isOpen = next && next.classList.contains("drill");
    var button = row.querySelector("button.more");
    if (isOpen && open !== true) {
      next.parentNode.removeChild(next);
      button.setAttribute("aria-expanded", "false");
    } else if (!isOpen && open !== false) {
      row.parentNode.insertBefore(drill(row), row.nextSibling);
      button.setAttribute("aria-expanded", "true");
    }
    writeHash();
  }

  table.tBodies[0].addEventListener("click", function (event) {
    var button = event.target.closest("button.more");
    if (button) { toggle(button.closest("tr")); }
  });
  Object.keys(controls).forEach(function (key) {
    controls[key].addEventListener(key === "text" ? "input" : "change", apply);
  });
  document.getElementById("f-reset").addEventListener("click", function () {
    Object.keys(controls).forEach(function (key) { controls[key].value = ""; });
    apply();
  });

  var open = readHash();
  apply();
  if (open !== undefined) {
    var target = rows.filter(function (row) { return row.dataset.i === open; })[0];
    if (target) {
      toggle(target, true);
      target.scrollIntoView();
    }
  }
  document.documentElement.setAttribute("data-ready", "1");
})();

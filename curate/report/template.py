"""Inline CSS and JS for the HTML report (kept as strings so the page is one file)."""

from __future__ import annotations

CSS = r"""
:root {
  --ink: #1d2430; --muted: #5f6b7a; --faint: #8a95a3; --line: #e3e7ec; --bg: #f5f7fa; --card: #fff;
  --error: #d1343f; --warning: #d98a00; --info: #2f73d9; --ok: #1f9d55;
  --close: #7459e0; --half: #0e9aa7; --full: #e5793b; --none: #9aa3ad; --unknown: #c6ccd3;
}
* { box-sizing: border-box; }
html { background: var(--bg); }
body { margin: 0; color: var(--ink); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
  Arial, sans-serif; }
main { max-width: 1320px; margin: 0 auto; padding: 28px 32px 64px; }
h1 { font-size: 26px; margin: 0; letter-spacing: -0.01em; }
h2 { font-size: 17px; margin: 0 0 12px; letter-spacing: 0.01em; }
h3 { font-size: 15px; margin: 0; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 18px 22px;
  margin-top: 18px; }
.sub { color: var(--muted); }
.small { font-size: 12px; }

/* header */
header.top { display: flex; gap: 24px; align-items: flex-start; justify-content: space-between; flex-wrap: wrap; }
header.top .where { color: var(--muted); margin-top: 4px; word-break: break-all; }
.verdict { border-radius: 10px; padding: 10px 16px; color: #fff; font-weight: 600; font-size: 15px;
  min-width: 240px; }
.verdict small { display: block; font-weight: 400; opacity: .9; font-size: 12.5px; }
.verdict.error { background: var(--error); } .verdict.warning { background: var(--warning); }
.verdict.ok { background: var(--ok); }
.stats { display: flex; gap: 10px; flex-wrap: wrap; margin-top: 16px; }
.stat { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; min-width: 104px; }
.stat b { display: block; font-size: 20px; line-height: 1.2; }
.stat span { color: var(--muted); font-size: 12px; }
.stat.error b { color: var(--error); } .stat.warning b { color: var(--warning); } .stat.info b { color: var(--info); }

/* composition */
.bar-wrap { position: relative; margin: 26px 0 14px; }
.bar { display: flex; height: 34px; border-radius: 7px; overflow: hidden; background: #eef1f4; }
.seg { display: flex; align-items: center; justify-content: center; color: #fff; font-weight: 600; font-size: 12.5px;
  white-space: nowrap; overflow: hidden; }
.seg.close, .dot.close { background: var(--close); } .seg.half, .dot.half { background: var(--half); }
.seg.full, .dot.full { background: var(--full); } .seg.none, .dot.none { background: var(--none); }
.seg.unknown, .dot.unknown { background: var(--unknown); color: var(--ink); }
.target { position: absolute; top: -20px; bottom: -6px; width: 0; border-left: 2px dashed var(--ink); }
.target span { position: absolute; top: 0; left: 4px; font-size: 11px; color: var(--ink); white-space: nowrap; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; text-transform: uppercase; letter-spacing: .04em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 3px; margin-right: 7px; vertical-align: -1px; }
.status-ok { color: var(--ok); font-weight: 600; } .status-low { color: var(--error); font-weight: 600; }
.status-high { color: var(--warning); font-weight: 600; }
.missing { margin: 12px 0 0; padding: 10px 14px; background: #fff6e5; border-left: 4px solid var(--warning);
  border-radius: 4px; }

/* clusters */
.clusters { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
.cluster { border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; margin-bottom: 8px; }
.cluster.dominant { border-color: var(--warning); background: #fffaf0; }
.cluster-head { display: flex; align-items: baseline; gap: 10px; margin-bottom: 6px; }
.cluster-head h3 { flex: 0 0 auto; }
.cluster-head > .sub:last-child { margin-left: auto; white-space: nowrap; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 3px; margin-right: 5px; vertical-align: -1px;
  border: 1px solid rgba(0,0,0,.15); }
.share { height: 5px; background: #eef1f4; border-radius: 3px; margin: -2px 0 8px; overflow: hidden; }
.share div { height: 100%; background: var(--info); }
.cluster.dominant .share div { background: var(--warning); }
.tag { display: inline-block; font-size: 11px; font-weight: 600; padding: 1px 7px; border-radius: 10px;
  background: var(--warning); color: #fff; margin-left: 6px; }
.strip { display: flex; flex-wrap: wrap; gap: 4px; }
.mini { width: 46px; height: 46px; border-radius: 5px; background-size: cover; background-position: center;
  background-color: #dde2e7; }

/* grid */
.toolbar { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin-bottom: 6px; }
.toolbar button { font: inherit; border: 1px solid var(--line); background: #fff; border-radius: 6px; padding: 5px 12px;
  cursor: pointer; color: var(--ink); }
.toolbar button.on { background: var(--ink); color: #fff; border-color: var(--ink); }
.toolbar input[type=search] { font: inherit; border: 1px solid var(--line); border-radius: 6px; padding: 5px 10px;
  min-width: 240px; }
.toolbar label { color: var(--muted); margin-left: auto; }
.group { margin-top: 22px; }
.group > h3 { display: flex; align-items: center; gap: 8px; padding-bottom: 8px; border-bottom: 2px solid var(--line);
  margin-bottom: 12px; }
.group > h3 .count { color: var(--muted); font-weight: 400; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(580px, 1fr)); gap: 14px; }
.card { display: flex; gap: 14px; border: 1px solid var(--line); border-radius: 9px; padding: 10px; background: #fff; }
.card.sev-error { border-left: 4px solid var(--error); } .card.sev-warning { border-left: 4px solid var(--warning); }
.card.sev-info { border-left: 4px solid var(--info); }
.thumb { position: relative; flex: 0 0 auto; border-radius: 6px; background-size: contain; background-repeat: no-repeat;
  background-position: center; background-color: #e9edf1; align-self: flex-start; }
.thumb svg { position: absolute; inset: 0; width: 100%; height: 100%; display: none; }
body.overlay .thumb svg { display: block; }
.thumb svg.textboxes { display: block; }
.thumb.broken { display: flex; align-items: center; justify-content: center; color: var(--muted); font-size: 12px; }
.info { flex: 1 1 auto; min-width: 0; }
.name { font-weight: 600; word-break: break-all; }
.meta { display: flex; flex-wrap: wrap; gap: 4px 6px; margin: 5px 0 7px; }
.chip { font-size: 11.5px; padding: 1px 8px; border-radius: 10px; background: #eef1f4; color: var(--muted); white-space: nowrap; }
.chip.close, .chip.half, .chip.full, .chip.none { color: #fff; }
.chip.close { background: var(--close); } .chip.half { background: var(--half); } .chip.full { background: var(--full); }
.chip.none { background: var(--none); }
.caption { font-size: 12.5px; color: #344050; background: #f7f8fa; border-radius: 5px; padding: 6px 8px; margin: 0 0 8px;
  white-space: pre-wrap; word-break: break-word; max-height: 8.5em; overflow: auto; }
.caption.missing-cap { color: var(--faint); font-style: italic; }
ul.diags { list-style: none; padding: 0; margin: 0; }
ul.diags li { font-size: 12.5px; padding: 4px 0 4px 8px; border-left: 3px solid var(--line); margin-bottom: 4px; }
ul.diags li.error { border-color: var(--error); } ul.diags li.warning { border-color: var(--warning); }
ul.diags li.info { border-color: var(--info); }
.sev { display: inline-block; font-size: 10.5px; font-weight: 700; text-transform: uppercase; letter-spacing: .04em;
  padding: 0 6px; border-radius: 4px; color: #fff; margin-right: 4px; }
.sev.error { background: var(--error); } .sev.warning { background: var(--warning); } .sev.info { background: var(--info); }
.rule { color: var(--muted); }
.clean { color: var(--ok); font-size: 12.5px; }
.hidden { display: none !important; }
footer { color: var(--faint); font-size: 12px; margin-top: 26px; text-align: center; }
@media (max-width: 900px) { .clusters { grid-template-columns: 1fr; } .cards { grid-template-columns: 1fr; }
  .card { flex-direction: column; } }
@media print { .toolbar { display: none; } section { break-inside: avoid; } }
"""

# Filtering only; the page is complete without it.
JS = r"""
(function () {
  var filter = "all", query = "";
  var cards = Array.prototype.slice.call(document.querySelectorAll(".card"));
  var groups = Array.prototype.slice.call(document.querySelectorAll(".group"));
  function apply() {
    cards.forEach(function (c) {
      var sev = c.getAttribute("data-sev");
      var ok = filter === "all" || (filter === "problems" && sev !== "none") || filter === sev;
      if (ok && query) ok = c.getAttribute("data-text").indexOf(query) !== -1;
      c.classList.toggle("hidden", !ok);
    });
    groups.forEach(function (g) {
      var shown = g.querySelectorAll(".card:not(.hidden)").length;
      g.classList.toggle("hidden", shown === 0);
      var n = g.querySelector(".shown");
      if (n) n.textContent = String(shown);
    });
  }
  document.querySelectorAll(".toolbar button[data-filter]").forEach(function (b) {
    b.addEventListener("click", function () {
      filter = b.getAttribute("data-filter");
      document.querySelectorAll(".toolbar button[data-filter]").forEach(function (o) { o.classList.toggle("on", o === b); });
      apply();
    });
  });
  var search = document.getElementById("search");
  if (search) search.addEventListener("input", function () { query = search.value.trim().toLowerCase(); apply(); });
  var overlay = document.getElementById("overlay");
  if (overlay) overlay.addEventListener("change", function () { document.body.classList.toggle("overlay", overlay.checked); });
  document.body.classList.add("js");
  // a link like report.html#error opens with that filter on
  var start = document.querySelector('.toolbar button[data-filter="' + location.hash.slice(1) + '"]');
  if (start) start.click(); else apply();
})();
"""

# `klint eval` only: the checkpoint x strength table and its image strips
EVAL_CSS = r"""
tr.best td { background: #eaf7ef; } tr.best td:first-child { box-shadow: inset 4px 0 0 var(--ok); }
.figs { display: flex; flex-wrap: wrap; gap: 8px; }
.figs figure { margin: 0; width: 132px; }
.figs img { width: 132px; height: 132px; object-fit: contain; border-radius: 6px; background: #e9edf1; display: block; }
.figs figcaption { font-size: 11.5px; color: var(--muted); margin-top: 3px; word-break: break-word; }
"""

// Sluice web UI: fills the server-rendered pages from the HTTP API and keeps them live with
// Server-Sent Events. No framework, no build step: this file is served as it is by the binary.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
};
const fmtInt = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : "–");
const fmtNum = (n) => (typeof n === "number" ? (Number.isInteger(n) ? n.toLocaleString("en-US") : n.toLocaleString("en-US", { maximumFractionDigits: 4 })) : "–");
const fmtTime = (t) => (t ? new Date(t).toLocaleString() : "–");
const FINAL = new Set(["SUCCEEDED", "FAILED", "SUPERSEDED", "TIMED_OUT", "ABORTED"]);

async function apiError(resp) {
  try {
    const body = await resp.json();
    return `${body.error}${body.detail ? ": " + body.detail : ""}`;
  } catch (_) {
    return `${resp.status} ${resp.statusText}`;
  }
}

// ------------------------------------------------------------------------------------------
// The index page: upload, runs list.

function initIndex() {
  const form = $("#upload-form");
  const status = $("#upload-status");
  const button = $("#upload-button");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const file = $("#file").files[0];
    if (!file) {
      status.className = "status-text error";
      status.textContent = "Choose a file first.";
      return;
    }
    const dataset = $("#dataset").value;
    const body = new FormData();
    body.append("file", file, file.name);
    const url = "/api/uploads" + (dataset ? `?dataset=${encodeURIComponent(dataset)}` : "");
    button.disabled = true;
    status.className = "status-text";
    status.textContent = `Uploading ${file.name}…`;
    try {
      const resp = await fetch(url, { method: "POST", body });
      if (resp.status !== 202) {
        status.className = "status-text error";
        status.textContent = await apiError(resp);
        return;
      }
      const landed = await resp.json();
      status.textContent = `Landed as ${landed.key}; opening run ${landed.run_id.slice(0, 12)}…`;
      window.location.assign(`/runs/${landed.run_id}`);
    } catch (e) {
      status.className = "status-text error";
      status.textContent = `The upload failed: ${e}`;
    } finally {
      button.disabled = false;
    }
  });

  const tbody = $("#runs tbody");
  const live = $("#runs-live");
  const render = (runs) => {
    tbody.replaceChildren();
    if (runs.length === 0) {
      tbody.append(el("tr", { class: "empty" }, el("td", { colspan: "7", text: "No runs yet: upload a file, or drop one into the landing folder." })));
      return;
    }
    for (const r of runs) {
      const link = el("a", { href: `/runs/${r.run_id}`, text: r.run_id.slice(0, 12) });
      const tr = el("tr", { "data-run-id": r.run_id },
        el("td", {}, el("span", { class: `badge ${r.status}`, text: r.status })),
        el("td", {}, link),
        el("td", { text: r.dataset }),
        el("td", {}, el("code", { text: r.source.key })),
        el("td", { class: "num", text: fmtInt(r.rows.total) }),
        el("td", { class: "num", text: fmtInt(r.rows.invalid) }),
        el("td", { text: fmtTime(r.started_at) }));
      tr.addEventListener("click", (e) => { if (e.target.tagName !== "A") window.location.assign(link.href); });
      tbody.append(tr);
    }
  };
  const source = new EventSource("/api/events");
  source.addEventListener("runs", (e) => { live.classList.remove("off"); render(JSON.parse(e.data)); });
  source.addEventListener("error", () => live.classList.add("off"));
}

// ------------------------------------------------------------------------------------------
// The run page.

function initRun() {
  const runId = document.body.dataset.runId;
  let historyShown = 0;
  let invalidShown = false;
  const chartsShown = new Set();

  const renderGraph = (states) => {
    for (const g of document.querySelectorAll("#graph g.state")) {
      const name = g.dataset.state;
      const o = states[name];
      const status = o ? o.status : "not-reached";
      g.setAttribute("class", `state st-${status}${o ? "" : " not-reached"}`);
      g.dataset.status = status;
      const title = g.querySelector("title");
      if (title) {
        let text = `${name}: ${status.replace("-", " ")}`;
        if (o && o.errors) text += ` (${o.errors} error${o.errors > 1 ? "s" : ""}${o.error ? ", last " + o.error : ""})`;
        title.textContent = text;
      }
    }
  };

  const renderStats = (stats) => {
    const names = Object.keys(stats || {});
    if (names.length === 0) return;
    const tbody = $("#stats tbody");
    tbody.replaceChildren();
    for (const name of names) {
      const s = stats[name];
      tbody.append(el("tr", {}, el("th", { scope: "row", text: name }),
        el("td", { class: "num", text: fmtInt(s.count) }), el("td", { class: "num", text: fmtNum(s.mean) }),
        el("td", { class: "num", text: fmtNum(s.min) }), el("td", { class: "num", text: fmtNum(s.max) }),
        el("td", { class: "num", text: fmtNum(s.sum) }), el("td", { class: "num", text: fmtNum(s.stddev) })));
    }
  };

  const renderDownloads = (downloads) => {
    if (!downloads || downloads.length === 0) return;
    const ul = $("#downloads");
    ul.replaceChildren();
    for (const d of downloads) {
      ul.append(el("li", {}, el("a", { href: d.href, "data-output": d.name, download: d.file, title: d.uri, text: `${d.name} · ${d.file}` })));
    }
    for (const d of downloads) {
      const m = /^plots\/(\d+)$/.exec(d.name);
      if (!m || chartsShown.has(d.name)) continue;
      const fig = document.querySelector(`#charts figure[data-plot="${m[1]}"]`);
      if (!fig) continue;
      chartsShown.add(d.name);
      const box = $(".chart-box", fig);
      const caption = $("figcaption", fig).textContent;
      box.replaceChildren(el("a", { href: d.href, target: "_blank", rel: "noopener", "aria-label": `Open the chart ${caption}` },
        el("img", { src: d.href, alt: caption || `Chart ${m[1]}`, width: "1200", height: "600", loading: "lazy" })));
    }
  };

  const detailOf = (ev) => {
    const d = ev.details || {};
    if (d.error) return `${d.error}${d.cause ? ": " + d.cause : ""}`;
    if (d.resource) return d.resource;
    return "";
  };
  const renderHistory = (history) => {
    const tbody = $("#history tbody");
    if (history.length < historyShown) { tbody.replaceChildren(); historyShown = 0; }
    for (const ev of history.slice(historyShown)) {
      const d = ev.details || {};
      tbody.append(el("tr", { class: /Failed|TimedOut|Aborted/.test(ev.type) ? "failed" : null },
        el("td", { class: "num", text: String(ev.id) }), el("td", { text: ev.type }),
        el("td", { text: d.name || "" }), el("td", { text: fmtTime(ev.timestamp) }),
        el("td", { text: detailOf(ev).slice(0, 400) })));
    }
    historyShown = history.length;
  };

  const renderInvalid = async (view) => {
    if (invalidShown || !FINAL.has(view.status) || !(view.rows && view.rows.invalid > 0)) return;
    if (!(view.downloads || []).some((d) => d.name === "invalid")) return;
    invalidShown = true;
    const resp = await fetch(`/api/runs/${runId}/invalid-rows?limit=20`);
    if (!resp.ok) { $("#invalid-more").hidden = false; $("#invalid-more").textContent = await apiError(resp); return; }
    const data = await resp.json();
    const table = $("#invalid");
    table.replaceChildren();
    const reasonCols = new Set(data.columns.map((c, i) => (/reason|error/i.test(c) ? i : -1)).filter((i) => i >= 0));
    table.append(el("thead", {}, el("tr", {}, ...data.columns.map((c) => el("th", { scope: "col", text: c })))));
    const tbody = el("tbody");
    for (const row of data.rows) {
      tbody.append(el("tr", {}, ...row.map((v, i) => el("td", { class: reasonCols.has(i) ? "reason" : null, text: v }))));
    }
    table.append(tbody);
    if (data.more) {
      const more = $("#invalid-more");
      more.hidden = false;
      more.textContent = `The first ${data.rows.length} of ${fmtInt(view.rows.invalid)} invalid rows; download them all below.`;
    }
  };

  const render = (view) => {
    const badge = $("#status");
    badge.textContent = view.status;
    badge.className = `badge ${view.status}`;
    $("#dataset").textContent = view.dataset;
    $("#source").textContent = view.source.key;
    $("#started").textContent = fmtTime(view.started_at);
    $("#finished").textContent = fmtTime(view.finished_at);
    if (view.finished_at) {
      const secs = (new Date(view.finished_at) - new Date(view.started_at)) / 1000;
      $("#took").textContent = `${secs.toFixed(1)} s`;
    }
    const err = $("#error");
    if (view.error) {
      err.hidden = false;
      err.textContent = `${view.error.stage ? view.error.stage + ": " : ""}${view.error.error}: ${view.error.cause}`;
    } else {
      err.hidden = true;
    }
    const rows = view.rows || {};
    for (const k of ["total", "valid", "invalid", "filtered", "loaded"]) $(`#rows-${k}`).textContent = fmtInt(rows[k]);
    renderGraph(view.states || {});
    renderStats(view.stats);
    renderDownloads(view.downloads);
    renderHistory(view.history || []);
    renderInvalid(view);
    document.body.dataset.status = view.status;
  };

  // A graph wider than its box (a phone) starts scrolled to its middle, where the flow begins.
  const graphBox = $("#graph");
  if (graphBox.scrollWidth > graphBox.clientWidth) graphBox.scrollLeft = (graphBox.scrollWidth - graphBox.clientWidth) / 2;

  const source = new EventSource(`/api/runs/${runId}/events`);
  source.addEventListener("run", (e) => {
    const view = JSON.parse(e.data);
    render(view);
    if (FINAL.has(view.status)) source.close();
  });
  source.addEventListener("error", async () => {
    // The stream ended or broke: show the last word, and let EventSource reconnect unless it is over.
    if (document.body.dataset.status && FINAL.has(document.body.dataset.status)) { source.close(); return; }
    const resp = await fetch(`/api/runs/${runId}`);
    if (resp.ok) render(await resp.json());
  });
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.page === "index") initIndex();
  if (document.body.dataset.page === "run") initRun();
});

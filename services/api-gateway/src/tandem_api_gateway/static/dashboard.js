// Tandem dashboard: reads the REST API with the session's API key and refreshes on the live feed.
"use strict";

const KEY_STORE = "tandem.apiKey";

function apiKey() {
  const params = new URLSearchParams(window.location.search);
  const fromUrl = params.get("key");
  if (fromUrl) {
    sessionStorage.setItem(KEY_STORE, fromUrl);
    // Keep the key out of the address bar and the history.
    params.delete("key");
    const rest = params.toString();
    history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : ""));
    return fromUrl;
  }
  return sessionStorage.getItem(KEY_STORE) || document.body.dataset.defaultKey || "";
}

const KEY = apiKey();

async function api(path) {
  const response = await fetch(path, { headers: { Authorization: "Bearer " + KEY } });
  if (!response.ok) {
    throw new Error(path + " answered " + response.status);
  }
  return response.json();
}

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  return node;
}

function row(cells, attrs) {
  const tr = el("tr", null, attrs);
  for (const cell of cells) tr.appendChild(cell instanceof Node ? cell : el("td", cell));
  return tr;
}

// A row's first cell (a list item's text) links to the record in the CRM when there is one
// (https only).
function crmCell(text, url, tag = "td", attrs = {}) {
  if (!url || !url.startsWith("https://")) return el(tag, text, attrs);
  const cell = el(tag, null, attrs);
  cell.appendChild(el("a", text, {
    href: url, target: "_blank", rel: "noopener noreferrer", class: "crm-link", title: "Open in CRM",
  }));
  return cell;
}

function fill(tbodyParent, rows) {
  const body = document.querySelector(tbodyParent + " tbody");
  body.replaceChildren(...rows);
}

function percent(value, unit) {
  if (value === null || value === undefined) return "n/a";
  return unit === "ratio" ? (value * 100).toFixed(1) + "%" : String(value);
}

function duration(seconds) {
  const sign = seconds < 0 ? "-" : "";
  let s = Math.abs(Math.round(seconds));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return sign + (h ? h + "h " : "") + m + "m " + s + "s";
}

// The metric filters live in the address bar too, so a filtered view can be shared as a link.
const FILTERS = ["period", "tier", "team"];

function metricQuery() {
  const params = new URLSearchParams({ period: "all" });
  for (const name of FILTERS) {
    const value = document.getElementById("f-" + name).value;
    if (value) params.set(name, value);
  }
  return params.toString();
}

function initFilters() {
  const params = new URLSearchParams(window.location.search);
  for (const name of FILTERS) {
    const select = document.getElementById("f-" + name);
    if (params.has(name)) select.value = params.get(name);
    select.addEventListener("change", () => {
      const link = new URLSearchParams(window.location.search);
      if (select.value) link.set(name, select.value); else link.delete(name);
      history.replaceState(null, "", window.location.pathname + "?" + link.toString());
      loadMetrics();
    });
  }
}

function maybe(value, format) {
  return value === null || value === undefined ? "n/a" : format(value);
}

async function loadMetrics() {
  const report = await api("/v1/metrics/alignment?" + metricQuery());
  const badge = document.getElementById("health");
  badge.textContent = report.health;
  badge.dataset.health = report.health;
  const scope = report.scope;
  const shown = document.getElementById("metric-scope");
  shown.dataset.tier = scope.tier || "all";
  shown.dataset.team = scope.team || "both";
  shown.textContent = (scope.start ? "from " + new Date(scope.start).toLocaleDateString() : "all time") +
    (scope.end ? " to " + new Date(scope.end).toLocaleDateString() : "") +
    "; tier " + shown.dataset.tier + "; team " + shown.dataset.team;
  document.getElementById("health-reasons").replaceChildren(
    ...report.health_reasons.map((reason) => el("li", reason)));
  const defs = Object.fromEntries(report.definitions.map((d) => [d.name, d]));
  fill("#metrics", report.readings.map((r) => {
    const d = defs[r.name];
    const health = el("td", r.health, { class: "health", "data-health": r.health });
    return row([el("td", d.title, { title: d.description + " (" + d.formula + ")" }),
      el("td", percent(r.value, d.unit), { "data-metric": r.name }),
      percent(d.target, d.unit), health], { "data-metric": r.name });
  }));
  fill("#first-touch", report.time_to_first_touch.map((t) => row(
    [t.tier, t.signal || "all signals", t.touched, t.untouched,
      maybe(t.median_seconds, duration), maybe(t.p90_seconds, duration)],
    { "data-touch": t.tier + ":" + (t.signal || "all") })));
  fill("#pipeline", [report.pipeline_in_tal, report.pipeline_outside_tal].map((p) => row(
    [p.in_tal ? "inside the TAL" : "outside the TAL", p.open_deals, p.open_amount, p.closed,
      p.won, percent(p.win_rate, "ratio")],
    { "data-segment": p.in_tal ? "in_tal" : "outside_tal" })));
}

async function loadTal() {
  const page = await api("/v1/accounts?in_tal=true&limit=200");
  for (const tier of ["1", "2", "3"]) {
    const accounts = page.items.filter((a) => (a.tier || "3") === tier);
    document.getElementById("tal-count-" + tier).textContent = String(accounts.length);
    document.getElementById("tal-tier-" + tier).replaceChildren(
      ...accounts.map((a) => crmCell(a.name || a.account_key, a.crm_url, "li",
        { "data-account": a.account_key })));
  }
}

let deadlines = [];

async function loadHandoffs() {
  const page = await api("/v1/handoffs?status=open&limit=100");
  const fetchedAt = Date.now();
  deadlines = [];
  fill("#open-handoffs", page.items.map((h) => {
    const left = el("td", "", { class: "countdown" });
    if (h.sla.seconds_remaining !== null) {
      deadlines.push({ cell: left, due: fetchedAt + h.sla.seconds_remaining * 1000 });
    } else {
      left.textContent = "not started";
    }
    return row([crmCell(h.account_name || h.account_key || "?", h.crm_url), h.tier, h.signal,
      h.assignee_id, h.sla.status, left], { "data-handoff": h.handoff_id });
  }));
  tick();
}

function tick() {
  const now = Date.now();
  for (const { cell, due } of deadlines) {
    const seconds = (due - now) / 1000;
    cell.textContent = duration(seconds);
    cell.classList.toggle("overdue", seconds < 0);
  }
}

async function loadBreaches() {
  const page = await api("/v1/breaches?limit=50");
  fill("#breaches", page.items.map((h) => row(
    [crmCell(h.account_name || h.account_key || "?", h.crm_url), h.tier, h.signal, h.assignee_id,
      h.sla.deadline ? new Date(h.sla.deadline).toLocaleString() : ""],
    { "data-handoff": h.handoff_id })));
}

async function loadAlerts() {
  const page = await api("/v1/alerts?limit=20");
  fill("#alerts", page.items.map((a) => row(
    [crmCell(a.title || a.alert_id, a.crm_url), a.kind, a.recipient_ids.join(", "),
      a.deliveries.map((d) => d.recipient_id + " via " + d.channel + ": " + d.status).join("; ")],
    { "data-alert": a.alert_id })));
}

function setStatus(text) {
  document.getElementById("status").textContent = text;
}

async function refresh() {
  const loads = [loadTal(), loadHandoffs(), loadBreaches(), loadAlerts(), loadMetrics()];
  const results = await Promise.allSettled(loads);
  const failed = results.filter((r) => r.status === "rejected").map((r) => r.reason.message);
  setStatus(failed.length ? "some panels failed: " + failed.join(", ") :
    "updated " + new Date().toLocaleTimeString());
  document.body.dataset.loaded = "true";
}

let pending = null;
function refreshSoon() {
  if (pending === null) pending = setTimeout(() => { pending = null; refresh(); }, 300);
}

// The live-feed indicator: its state, and how many changes it has brought so far.
function setLive(state, received) {
  const live = document.getElementById("live");
  live.dataset.state = state;
  if (received) live.dataset.events = String(Number(live.dataset.events) + received);
  live.textContent = state + " (" + live.dataset.events + " changes)";
}

// EventSource cannot send an Authorization header: read the stream with fetch instead.
async function follow() {
  for (;;) {
    try {
      const response = await fetch("/v1/stream", { headers: { Authorization: "Bearer " + KEY } });
      if (!response.ok) throw new Error("stream answered " + response.status);
      setLive("live", 0);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        const events = buffer.split(/\r?\n\r?\n/);
        buffer = events.pop();
        const changes = events.filter((e) => /^event: (handoff|breach|alert)/m.test(e)).length;
        if (changes) {
          setLive("live", changes);
          refreshSoon();
        }
      }
    } catch (error) {
      setStatus("live feed interrupted: " + error.message + "; retrying");
    }
    setLive("reconnecting", 0);
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }
}

if (!KEY) {
  setStatus("no API key: open this page with ?key=<your key>");
} else {
  initFilters();
  refresh();
  setInterval(tick, 1000);
  follow();
}

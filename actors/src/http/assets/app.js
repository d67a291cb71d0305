// pmx dashboard: the app list with live status and CPU/memory charts, and an app's page with
// its spec, its log tail and its history timeline. Plain DOM, no dependencies, works offline.
// Every value from the daemon goes in through textContent, never as HTML.
"use strict";

const POLL_MS = 2000;
const KEEP = 90; // samples kept per instance for the charts
const samples = new Map(); // pm_id -> [{cpu, mem}]
let timer = null;
let seeded = false;

function el(tag, attrs, ...children) {
  const node = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "on") for (const [ev, f] of Object.entries(v)) node.addEventListener(ev, f);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : String(c));
  return node;
}

function notice(text, ok) {
  const n = document.getElementById("notice");
  n.textContent = text;
  n.className = ok ? "ok" : "";
}

function token() {
  const typed = document.getElementById("token").value.trim();
  if (typed) return typed;
  const cookie = document.cookie.split("; ").find((c) => c.startsWith("pmx_token="));
  return cookie ? cookie.slice("pmx_token=".length) : "";
}

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.error || response.statusText);
    error.status = response.status;
    throw error;
  }
  return body;
}

const bytes = (n) => {
  const units = ["b", "kb", "mb", "gb"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)}${units[i]}`;
};
const uptime = (p) => {
  if (!p.started_at || !p.pid) return "0";
  const s = Math.max(0, Math.floor((Date.now() - p.started_at) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
};
const statusName = (s) => s.replace("_", "-");
const when = (ms) => new Date(ms).toLocaleString();

function remember(processes) {
  for (const p of processes) {
    const series = samples.get(p.id) || [];
    series.push({ cpu: p.usage.tree_cpu, mem: p.usage.tree_memory });
    if (series.length > KEEP) series.shift();
    samples.set(p.id, series);
  }
}

// Once, before the first view: the daemon's last minute of samples, one per poll interval,
// so the charts start filled. The newest is left for the first poll to add.
async function seed() {
  const recent = await api("/api/samples");
  for (const { id, samples: readings } of recent) {
    const series = [];
    let next = Infinity;
    for (let i = readings.length - 2; i >= 0 && series.length < KEEP - 1; i--) {
      const [at, cpu, mem] = readings[i];
      if (at > next) continue;
      series.unshift({ cpu, mem });
      next = at - POLL_MS;
    }
    samples.set(id, series);
  }
}

function spark(values, cls) {
  const max = Math.max(1, ...values);
  const n = Math.max(values.length - 1, 1);
  const points = values.map((v, i) => `${(i / n) * 100},${30 - (v / max) * 28}`).join(" ");
  return el("svg:svg", { class: `spark ${cls}`, viewBox: "0 0 100 30", preserveAspectRatio: "none" },
    el("svg:polyline", { points }));
}

function statusCell(p) {
  const name = statusName(p.status);
  return el("td", { class: `status s-${name}` }, name);
}

// The app list.
async function showList() {
  const view = document.getElementById("view");
  const processes = await api("/api/apps");
  remember(processes);
  document.getElementById("summary").textContent =
    `${new Set(processes.map((p) => p.name)).size} apps, ${processes.length} instances`;
  const rows = processes.map((p) => {
    const series = samples.get(p.id) || [];
    return el("tr", { class: "app", "data-app": p.name, "data-id": p.id, on: { click: () => { location.hash = `#/app/${encodeURIComponent(p.name)}`; } } },
      el("td", {}, p.id), el("td", {}, el("a", { href: `#/app/${encodeURIComponent(p.name)}` }, p.name)),
      statusCell(p), el("td", {}, p.pid || "-"), el("td", {}, p.restarts), el("td", {}, uptime(p)),
      el("td", {}, `${p.usage.tree_cpu.toFixed(1)}%`, " ", spark(series.map((s) => s.cpu), "cpu")),
      el("td", {}, bytes(p.usage.tree_memory), " ", spark(series.map((s) => s.mem), "mem")));
  });
  view.replaceChildren(el("table", { id: "apps" },
    el("thead", {}, el("tr", {}, ["id", "name", "status", "pid", "↺", "uptime", "cpu", "memory"].map((h) => el("th", {}, h)))),
    el("tbody", {}, rows)));
  if (!processes.length) view.append(el("p", {}, "No apps. Start one: pmx start app.js"));
}

// An app's page.
const WINDOWS = [["15 minutes", 15 * 60e3], ["1 hour", 3600e3], ["6 hours", 6 * 3600e3], ["24 hours", 86400e3], ["7 days", 7 * 86400e3], ["everything", 0]];
let windowMs = 3600e3;

async function act(name, action) {
  if (!confirm(`${action} ${name}?`)) return;
  notice(`${action} ${name}…`, true);
  try {
    const headers = token() ? { Authorization: `Bearer ${token()}` } : {};
    const answer = await api(`/api/apps/${encodeURIComponent(name)}/${action}`, { method: "POST", headers });
    notice(`${action} ${name}: done${answer.notes && answer.notes.length ? ` (${answer.notes.join("; ")})` : ""}`, true);
  } catch (e) {
    notice(`${action} ${name} refused: ${e.message}`);
  }
  refresh();
}

function timeline(events, since, until) {
  const rows = ["online", "stop", "crash", "restart", "policy", "other"];
  const rowOf = (c) => ({ exit: "crash", errored: "crash", stopped: "stop", transition: "online", config: "other", command: "other" }[c] || (rows.includes(c) ? c : "other"));
  const x = (at) => 90 + ((at - since) / Math.max(until - since, 1)) * 900;
  const svg = el("svg:svg", { class: "timeline", viewBox: "0 0 1000 176", preserveAspectRatio: "none", "data-window": windowMs });
  svg.append(el("svg:text", { x: 90, y: 172 }, when(since)),
    el("svg:text", { x: 990, y: 172, "text-anchor": "end" }, when(until)));
  rows.forEach((r, i) => {
    const y = 20 + i * 26;
    svg.append(el("svg:line", { class: "row", x1: 90, x2: 990, y1: y, y2: y }), el("svg:text", { x: 4, y: y + 3 }, r));
  });
  for (const e of events) {
    const y = 20 + rows.indexOf(rowOf(e.class)) * 26;
    svg.append(el("svg:circle", { class: `tl-point tl-${e.class}`, cx: x(e.at).toFixed(1), cy: y, r: 5, "data-seq": e.seq },
      el("svg:title", {}, `${when(e.at)} ${e.instance !== null && e.instance !== undefined ? `#${e.instance} ` : ""}${e.text} ← ${e.because}`)));
  }
  return svg;
}

async function showApp(name) {
  const view = document.getElementById("view");
  const until = Date.now();
  const since = windowMs ? until - windowMs : 0;
  const query = since ? `?since=${since}` : "";
  const [page, history, logs] = await Promise.all([
    api(`/api/apps/${encodeURIComponent(name)}`),
    api(`/api/apps/${encodeURIComponent(name)}/history${query}`),
    api(`/api/apps/${encodeURIComponent(name)}/logs?lines=200`),
  ]);
  remember(page.instances);
  // The axis starts a little before the first event shown (or the window's start, if no event).
  const first = history.events.length ? history.events[0].at : (since || until - 60e3);
  const from = Math.max(since, first - Math.max((until - first) / 20, 5e3));
  const sum = (f) => {
    const series = page.instances.map((p) => samples.get(p.id) || []);
    const len = Math.max(0, ...series.map((s) => s.length));
    return Array.from({ length: len }, (_, i) => series.reduce((acc, s) => acc + ((s[s.length - len + i] || {})[f] || 0), 0));
  };
  const select = el("select", { id: "window", on: { change: (e) => { windowMs = Number(e.target.value); refresh(); } } },
    WINDOWS.map(([label, ms]) => { const o = el("option", { value: ms }, label); if (ms === windowMs) o.selected = true; return o; }));
  const legend = el("div", { class: "legend" },
    ["online", "stopped", "crash", "restart", "policy", "config"].map((c) => el("span", {}, el("span", { class: `mark tl-${c}` }), c)));
  const rows = [...history.events].reverse().map((e) => el("tr", { class: `event ev-${e.class}` },
    el("td", {}, el("span", { class: `mark tl-${e.class}` }), when(e.at)),
    el("td", {}, e.instance ?? "-"), el("td", { class: "wrap" }, e.text), el("td", { class: "wrap" }, e.because)));
  const logPanes = ["out", "err"].map((stream) => {
    const lines = logs.sources.filter((s) => s.stream === stream).flatMap((s) => s.lines);
    return el("div", {}, el("h3", {}, stream === "out" ? "stdout" : "stderr"), el("pre", { class: `log-${stream}` }, lines.join("\n")));
  });
  view.replaceChildren(
    el("h2", {}, el("a", { href: "#/" }, "apps"), " / ", page.name),
    el("div", { class: "actions" }, ["restart", "reload", "stop", "start"].map((a) =>
      el("button", { id: `do-${a}`, on: { click: () => act(page.name, a) } }, a))),
    el("table", { id: "instances" },
      el("thead", {}, el("tr", {}, ["id", "status", "pid", "↺", "uptime", "cpu", "memory", "last exit"].map((h) => el("th", {}, h)))),
      el("tbody", {}, page.instances.map((p) => el("tr", { "data-id": p.id },
        el("td", {}, p.id), statusCell(p), el("td", {}, p.pid || "-"), el("td", {}, p.restarts), el("td", {}, uptime(p)),
        el("td", {}, `${p.usage.tree_cpu.toFixed(1)}%`), el("td", {}, bytes(p.usage.tree_memory)),
        el("td", {}, p.last_exit ? (p.last_exit.code ?? p.last_exit.signal) : "-"))))),
    el("div", { class: "charts" },
      el("div", {}, el("h3", {}, "cpu %"), spark(sum("cpu"), "cpu")),
      el("div", {}, el("h3", {}, "memory"), spark(sum("mem"), "mem"))),
    el("h3", {}, "history ", select),
    legend,
    timeline(history.events, from, until),
    el("table", { id: "events" }, el("tbody", {}, rows)),
    el("h3", {}, "logs"),
    el("div", { class: "logs" }, logPanes),
    el("h3", {}, "settings"),
    el("table", { id: "spec" }, el("tbody", {}, page.settings.map(([label, value]) =>
      el("tr", {}, el("th", {}, label), el("td", { class: "wrap" }, value))))));
  for (const pre of view.querySelectorAll(".logs pre")) pre.scrollTop = pre.scrollHeight;
}

async function refresh() {
  clearTimeout(timer);
  const match = location.hash.match(/^#\/app\/(.+)$/);
  try {
    if (!seeded) {
      seeded = true;
      await seed();
    }
    if (match) await showApp(decodeURIComponent(match[1]));
    else await showList();
  } catch (e) {
    notice(e.status === 401 ? e.message : `cannot reach the daemon: ${e.message}`);
  }
  timer = setTimeout(refresh, POLL_MS);
}

window.addEventListener("hashchange", refresh);
refresh();

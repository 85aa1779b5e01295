// pasd web: the page. Everything live arrives on /events (server-sent events from the daemon's
// event stream); the JSON API is read on load, on a resync, and when a view needs more.
"use strict";

const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const STATES = ["QUEUED", "RUNNING", "REVIEW", "APPLIED", "REJECTED", "CONFLICT", "FAILED", "CANCELLED"];
const ui = {
  view: "overview", taskId: null, page: 0, pages: 1, cursors: [null], next: null, tasks: [], programmers: {}, progress: {},
  jobs: {}, skew: 0, detail: null, layout: "unified", chosen: new Set(), charts: {}, receiptsStale: true,
  lastSeq: 0, delays: [],
};
window.pasd = ui; // for tests and the curious: what the page holds

// ------------------------------------------------------------------ helpers

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "html") el.innerHTML = v; // only for server-escaped, highlighted code
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}
const $ = (sel) => document.querySelector(sel);
const short = (id) => (id || "").slice(0, 8);
const money = (x) => "$" + (x || 0).toFixed(x >= 1 ? 2 : 4);
const now = () => Date.now() / 1000 - ui.skew;
function ago(t) {
  if (!t) return "";
  const s = Math.max(0, now() - t);
  if (s < 60) return Math.floor(s) + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + Math.floor(s % 60) + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  return Math.floor(s / 86400) + "d";
}
const when = (t) => (t ? new Date(t * 1000).toLocaleString() : "");
const badge = (state) => h("span", { class: "badge s-" + state.toLowerCase() }, state);

async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin" });
  if (!r.ok) throw new Error((await r.text()) || r.statusText);
  return r.json();
}
async function post(url, body) {
  const r = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF },
    body: JSON.stringify(body || {}),
  });
  const text = await r.text();
  let data;
  try { data = JSON.parse(text); } catch { data = { error: text }; }
  if (!r.ok) throw new Error(data.error || text || r.statusText);
  return data;
}

// ------------------------------------------------------------------ the link

function setLink(ok, reason) {
  const el = $("#link");
  const first = !ok && reason === "connecting to the daemon";  // pasd web has only just started
  el.textContent = ok ? "live" : first ? "connecting…" : "daemon unavailable";
  el.className = "badge " + (ok ? "ok" : first ? "" : "down");
  const banner = $("#banner");
  banner.hidden = ok || first;
  banner.textContent = ok ? "" : "The daemon is not answering (" + (reason || "no reason given") + "); reconnecting…";
}

function connect() {
  const es = new EventSource("/events");
  es.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === "hello") { setLink(msg.connected, msg.reason); if (msg.connected) resync(); }
    else if (msg.type === "synced") { setLink(true); resync(); }
    else if (msg.type === "lost") setLink(false, msg.reason);
    else if (msg.type === "counts") showCounts(msg.counts);
    else if (msg.type === "event") onEvent(msg);
  };
  es.onerror = () => setLink(false, "the dashboard server is not answering");
}

async function resync() {
  const st = await getJSON("/api/state");
  ui.skew = Date.now() / 1000 - st.now;
  setLink(st.connected, st.reason);
  ui.programmers = Object.fromEntries(st.programmers.map((p) => [p.id, p]));
  ui.progress = st.progress || {};
  ui.jobs = Object.fromEntries(st.jobs.map((j) => [j.id, j]));
  ui.counts = st.counts;
  showCounts(st.counts);
  drawPool();
  drawJobs();
  await loadTasks();
  if (ui.view === "detail") await loadDetail();
  if (ui.view === "receipts") await loadCharts();
  else ui.receiptsStale = true;
  document.body.dataset.synced = String(Number(document.body.dataset.synced || 0) + 1);
}

function onEvent(msg) {
  ui.lastSeq = msg.seq;
  // daemon event to page, and to `pasd web`, in ms
  if (ui.delays.length < 100000) ui.delays.push([Date.now() - msg.time * 1000, (msg.sent - msg.time) * 1000]);
  if (msg.kind === "programmer") {
    ui.programmers[msg.programmer.id] = msg.programmer;
    redraw(drawPool);
  } else if (msg.kind === "task") {
    if (!["QUEUED", "RUNNING"].includes(msg.task.state)) delete ui.progress[msg.task.id];
    taskChanged(msg.task);
    if (ui.view === "detail" && ui.taskId === msg.task.id) loadDetail();
  } else if (msg.kind === "progress") {
    ui.progress[msg.progress.task_id] = msg.progress;
    redraw(drawPool);
    if (ui.view === "detail" && ui.taskId === msg.progress.task_id) showProgress();
  } else if (msg.kind === "receipt") {
    ui.receiptsStale = true;
    if (ui.view === "receipts") scheduleCharts();
  } else if (msg.kind === "job") {
    ui.jobs[msg.job.id] = msg.job;
    redraw(drawJobs);
  }
}

// A burst of events redraws each region once, at the next frame, not once per event.
const dirty = new Set();
let frame = 0;
function redraw(what) {
  dirty.add(what);
  if (!frame) frame = requestAnimationFrame(() => {
    frame = 0;
    const todo = [...dirty];
    dirty.clear();
    for (const fn of todo) fn();
  });
}

function showCounts(counts = ui.counts) {  // the daemon's own counts (pool.status), not the page's
  if (!counts) return;
  ui.counts = counts;
  $("#counts").textContent = ["QUEUED", "RUNNING", "REVIEW"].map((s) => s.toLowerCase() + " " + (counts[s] || 0)).join(" · ");
}

// ------------------------------------------------------------------ pool and jobs

function drawPool() {
  const body = $("#pool tbody");
  body.replaceChildren(...Object.values(ui.programmers).sort((a, b) => a.id.localeCompare(b.id)).map((p) => {
    const prog = p.task_id ? ui.progress[p.task_id] : null;
    return h("tr", { class: "programmer", "data-programmer": p.id, "data-state": p.state },
      h("td", {}, p.id), h("td", {}, badge(p.state)),
      h("td", {}, p.task_id ? h("a", { href: "#/task/" + p.task_id }, short(p.task_id)) : ""),
      h("td", {}, p.model || ""), h("td", {}, p.engine || "—"), h("td", {}, p.node || "local"),
      h("td", { class: "elapsed", "data-since": p.busy_since || "" }, p.busy_since ? ago(p.busy_since) : ""),
      h("td", { class: "num" }, p.tasks_done), h("td", { class: "num" }, p.failures),
      h("td", { class: "muted" }, prog ? prog.message : p.last_error || ""));
  }));
}

function drawJobs() {
  const jobs = Object.values(ui.jobs).sort((a, b) => b.created_at - a.created_at).slice(0, 20);
  $("#jobs-section").hidden = jobs.length === 0;
  $("#jobs tbody").replaceChildren(...jobs.map((j) => h("tr", { "data-job": j.id },
    h("td", {}, h("a", { href: "#", onclick: (e) => { e.preventDefault(); filterJob(j.id); } }, short(j.id))),
    h("td", {}, badge(j.state)), h("td", { class: "instr" }, j.instruction),
    h("td", { class: "num" }, j.task_ids.length + (j.pending.length ? " +" + j.pending.length : "")),
    h("td", { class: "num" }, money(j.spent_usd)), h("td", {}, ago(j.created_at) + " ago"),
    h("td", {}, j.state === "REVIEW" ? [h("button", { type: "button", class: "good", onclick: () => jobAct(j.id, "approve") }, "Approve all"), " ",
      h("button", { type: "button", class: "bad", onclick: () => jobAct(j.id, "reject") }, "Reject all")] : "",
      ["QUEUED", "RUNNING"].includes(j.state) ? h("button", { type: "button", onclick: () => jobAct(j.id, "cancel") }, "Cancel") : ""))));
}

function filterJob(jobId) {
  $("#f-words").value = jobId;
  firstPage();
}

async function jobAct(jobId, verb) {
  try { await post("/api/job/" + jobId + "/" + verb); } catch (e) { alert(e.message); }
}

// ------------------------------------------------------------------ the task list

function filters() {
  const q = new URLSearchParams();
  const st = $("#f-state").value, model = $("#f-model").value, words = $("#f-words").value.trim();
  if (st) q.append("state", st);
  if (model) q.set("model", model);
  if (words) q.set("q", words);
  return { q, st, model, words };
}

let loadSeq = 0, detailSeq = 0, chartSeq = 0, reloadTimer = null;
function reloadSoon() {  // a burst of events asks the server for the page once
  if (!reloadTimer) reloadTimer = setTimeout(() => { reloadTimer = null; loadTasks(); }, 100);
}

// Pages come from the daemon by cursor (keyset paging): page n starts before the last task of page n-1,
// so tasks queued meanwhile never shift the older pages.
function firstPage() {
  ui.page = 0;
  ui.cursors = [null];
  loadTasks();
}

async function loadTasks() {
  const { q } = filters();
  const before = ui.cursors[ui.page];
  if (before) q.set("before", before);
  const mine = ++loadSeq;
  let data;
  try { data = await getJSON("/api/tasks?" + q); }
  catch (e) { if (mine === loadSeq) $("#page-info").textContent = e.message; return; }
  if (mine !== loadSeq) return; // a newer request is on its way
  ui.tasks = data.tasks;
  ui.next = data.next;
  if (data.total !== null) { ui.total = data.total; ui.exact = data.total_exact; }  // counted on the first page
  const models = $("#f-model");
  const chosen = models.value;
  models.replaceChildren(h("option", { value: "" }, "any model"), ...data.models.map((m) => h("option", { value: m }, m)));
  models.value = chosen;
  drawTasks();
}

function drawPageInfo() {
  ui.pages = Math.max(1, Math.ceil(ui.total / 50), ui.page + 1);
  $("#page-info").textContent = ui.total + (ui.exact === false ? "+" : "") + " task" + (ui.total === 1 ? "" : "s") +
    " · page " + (ui.page + 1) + (ui.exact === false ? "" : " of " + ui.pages);
  $("#prev").disabled = ui.page === 0;
  $("#next").disabled = !ui.next;
}

// The daemon's word filter, for tasks that arrive by events: each word's pieces (split where the
// daemon's full-text index splits, at anything not a letter or digit) must be consecutive words of
// the task, the last one a prefix.
const pieces = (s) => s.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean);
function hasWord(hay, word) {
  const w = pieces(word);
  if (!w.length) return true;
  const last = w.length - 1;
  for (let i = 0; i + last < hay.length; i++) {
    if (w.every((x, j) => (j === last ? hay[i + j].startsWith(x) : hay[i + j] === x))) return true;
  }
  return false;
}

function matches(t) {
  const { st, model, words } = filters();
  if (st && t.state !== st) return false;
  if (model && t.model !== model) return false;
  const hay = pieces([t.id, t.instruction, ...t.files, t.job_id || ""].join(" "));
  return words.split(/\s+/).filter(Boolean).every((w) => hasWord(hay, w));
}

function taskChanged(task) {
  const i = ui.tasks.findIndex((t) => t.id === task.id);
  if (i >= 0) {
    if (matches(task)) ui.tasks[i] = task; else { ui.tasks.splice(i, 1); ui.total -= 1; }
  } else if (task.state === "QUEUED" && matches(task)) {  // a new task: the newest, so first on page 1
    ui.total += 1;
    if (ui.page === 0) {
      ui.tasks.unshift(task);
      if (ui.tasks.length > 50) ui.tasks.pop();
    }
  } else if (matches(task)) {  // it now matches the filters: count it, and place it if it falls on this page
    const first = ui.tasks[0], last = ui.tasks[ui.tasks.length - 1];
    const here = ui.tasks.length < 50 || (task.created_at >= last.created_at && (ui.page === 0 || task.created_at <= first.created_at));
    if (here) reloadSoon(); else { ui.total += 1; redraw(drawPageInfo); }
    return;
  } else return;
  redraw(drawTasks);
}

function drawTasks() {
  drawPageInfo();
  $("#tasks tbody").replaceChildren(...ui.tasks.map((t) => h("tr", { class: "task", "data-task": t.id, "data-state": t.state,
    onclick: () => { location.hash = "#/task/" + t.id; } },
    h("td", {}, h("a", { href: "#/task/" + t.id }, short(t.id))), h("td", {}, badge(t.state),
      t.warnings.length ? h("span", { class: "warn", title: t.warnings.join(", ") }, " ⚠") : ""),
    h("td", { class: "instr" }, t.instruction), h("td", {}, t.model),
    h("td", {}, t.job_id ? short(t.job_id) : ""),
    h("td", { class: "num" }, t.files_changed ? "+" + t.lines_added + " −" + t.lines_removed : ""),
    h("td", { class: "num" }, money(t.cost_usd)), h("td", { title: when(t.created_at) }, ago(t.created_at) + " ago"))));
}

// ------------------------------------------------------------------ one task

// An event and a resync can ask for the task at once and the answers can arrive out of order:
// only the latest request's answer is drawn, so an older read never covers a newer one.
async function loadDetail() {
  const id = ui.taskId;
  const mine = ++detailSeq;
  let data;
  try { data = await getJSON("/api/task/" + encodeURIComponent(id)); }
  catch (e) { if (mine === detailSeq) $("#task-head").replaceChildren(h("p", { class: "error" }, e.message)); return; }
  if (mine !== detailSeq || id !== ui.taskId) return;
  ui.detail = data;
  for (const n of [...ui.chosen]) if (!pendingHunks().includes(n)) ui.chosen.delete(n);
  drawDetail();
}

function pendingHunks() {
  const d = ui.detail && ui.detail.diff;
  if (!d) return [];
  return d.files.flatMap((f) => f.hunks).filter((hk) => hk.state === "pending").map((hk) => hk.id);
}

function showProgress() {
  const el = $("#progress");
  const prog = ui.progress[ui.taskId];
  if (el) el.textContent = prog ? prog.phase + ": " + prog.message + (prog.tokens ? " (" + prog.tokens + " tokens)" : "") : "";
}

function drawDetail() {
  const { task: t, diff, diff_error: diffError, receipts, job } = ui.detail;
  const head = [
    h("h2", {}, "Task ", h("code", {}, t.id), " ", badge(t.state)),
    h("pre", { class: "instruction" }, t.instruction),
    h("dl", { class: "facts" },
      h("dt", {}, "model"), h("dd", {}, t.model + (t.tier ? " (tier " + t.tier + ")" : "")),
      t.engine ? [h("dt", {}, "engine"), h("dd", {}, typeof t.engine === "string" ? t.engine : JSON.stringify(t.engine))] : [],
      h("dt", {}, "workspace"), h("dd", {}, t.workspace),
      h("dt", {}, "files"), h("dd", {}, t.files.join(", ") || "—"),
      h("dt", {}, "programmer"), h("dd", {}, t.programmer || "—"),
      h("dt", {}, "cost"), h("dd", {}, money(t.cost_usd)),
      h("dt", {}, "created"), h("dd", {}, when(t.created_at)),
      job ? [h("dt", {}, "job"), h("dd", {}, short(job.id) + " — " + job.instruction)] : [],
      t.check ? [h("dt", {}, "check"), h("dd", {}, h("code", {}, t.check))] : [],
      t.error ? [h("dt", {}, "error"), h("dd", { class: "error" }, t.error)] : [],
      t.warnings.length ? [h("dt", {}, "warnings"), h("dd", { class: "warn" }, t.warnings.join(", "))] : []),
    h("p", { id: "progress", class: "muted" }),
  ];
  $("#task-head").replaceChildren(...head);
  showProgress();
  const reviewable = ["REVIEW", "CONFLICT"].includes(t.state) && pendingHunks().length > 0;
  $("#approve").hidden = $("#reject").hidden = !reviewable;
  $("#cancel").hidden = !["QUEUED", "RUNNING"].includes(t.state);
  drawChosen();
  if (diffError) $("#diff").replaceChildren(h("p", { class: "muted" }, "No diff: " + diffError));
  else drawDiff(diff, reviewable);
  $("#task-receipts tbody").replaceChildren(...receipts.map((r) => h("tr", {},
    h("td", { class: "num" }, r.attempt + (r.revision ? " (rev " + r.revision + ")" : "")), h("td", {}, r.programmer),
    h("td", {}, r.provider.model), h("td", { class: "num" }, r.tokens.input + " / " + r.tokens.output),
    h("td", { class: "num" }, r.priced ? money(r.cost_usd) : "unpriced"), h("td", { class: "num" }, r.wall_s.toFixed(2) + "s"),
    h("td", { class: "num" }, r.llm_s.toFixed(2) + "s"), h("td", {}, r.check || "—"), h("td", {}, r.outcome))));
}

function drawChosen() {
  const n = [...ui.chosen].sort((a, b) => a - b);
  $("#chosen").textContent = n.length ? "hunks " + n.join(", ") + " chosen" : "";
  $("#approve").textContent = n.length ? "Approve chosen" : "Approve all";
  $("#reject").textContent = n.length ? "Reject chosen" : "Reject all";
}

function drawDiff(diff, reviewable) {
  const box = $("#diff");
  if (!diff) { box.replaceChildren(h("p", { class: "muted" }, "No diff yet: the task is " + ui.detail.task.state.toLowerCase() + ".")); return; }
  if (diff.pruned_at) { box.replaceChildren(h("p", { class: "muted" }, "The diff was removed by `pasd gc` on " + when(diff.pruned_at) + ".")); return; }
  if (!diff.files.length) { box.replaceChildren(h("p", { class: "muted" }, "No changes.")); return; }
  box.replaceChildren(...diff.files.map((f) => h("section", { class: "file" },
    h("h3", {}, f.path, f.created ? " (new)" : "", h("span", { class: "muted" }, "  +" + f.added + " −" + f.removed)),
    ...f.hunks.map((hk) => drawHunk(f, hk, reviewable)))));
}

function drawHunk(f, hk, reviewable) {
  const marks = [h("span", { class: "badge h-" + hk.state }, hk.state)];
  if (hk.stale) marks.push(h("span", { class: "badge stale", title: "your file changed under this hunk since the task started" }, "stale"));
  if (hk.conflict) marks.push(h("span", { class: "badge conflict", title: hk.conflict }, "conflict: " + hk.conflict));
  const pick = reviewable && hk.state === "pending"
    ? h("label", { class: "pick" }, h("input", { type: "checkbox", class: "choose", "data-hunk": hk.id, checked: ui.chosen.has(hk.id),
      onchange: (e) => { if (e.target.checked) ui.chosen.add(hk.id); else ui.chosen.delete(hk.id); drawChosen(); } }), " choose")
    : null;
  return h("div", { class: "hunk" + (hk.conflict ? " has-conflict" : "") + (hk.stale ? " is-stale" : ""), "data-hunk": hk.id, "data-state": hk.state },
    h("div", { class: "hunk-head" }, h("strong", {}, "hunk " + hk.id), " ", h("code", {}, hk.header), " ", ...marks, pick),
    ui.layout === "split" ? splitTable(hk) : unifiedTable(hk));
}

function unifiedTable(hk) {
  const sign = { ctx: " ", del: "-", add: "+" };
  return h("table", { class: "code unified" }, h("tbody", {}, ...hk.lines.map((l) => h("tr", { class: l.kind },
    h("td", { class: "ln" }, l.old ?? ""), h("td", { class: "ln" }, l.new ?? ""), h("td", { class: "sign" }, sign[l.kind]),
    h("td", { class: "src", html: l.html })))));
}

function splitTable(hk) {
  // context lines sit on both sides; a run of removals faces the run of additions after it
  const rows = [];
  let dels = [], adds = [];
  const flush = () => {
    for (let i = 0; i < Math.max(dels.length, adds.length); i++) rows.push([dels[i], adds[i]]);
    dels = []; adds = [];
  };
  for (const l of hk.lines) {
    if (l.kind === "ctx") { flush(); rows.push([l, l]); }
    else if (l.kind === "del") { if (adds.length) flush(); dels.push(l); }
    else adds.push(l);
  }
  flush();
  const cell = (l, side) => l
    ? [h("td", { class: "ln" }, side === "old" ? l.old : l.new), h("td", { class: "src " + l.kind, html: l.html })]
    : [h("td", { class: "ln" }), h("td", { class: "src empty" })];
  return h("table", { class: "code split" }, h("tbody", {}, ...rows.map(([a, b]) => h("tr", {}, ...cell(a, "old"), ...cell(b, "new")))));
}

async function review(verb) {
  const hunks = [...ui.chosen].sort((a, b) => a - b);
  const out = $("#action-result");
  out.textContent = "…";
  try {
    const res = verb === "cancel" ? await post("/api/task/" + ui.taskId + "/cancel")
      : await post("/api/task/" + ui.taskId + "/" + verb, { hunks: hunks.length ? hunks : null });
    if (verb === "cancel") out.textContent = "cancelled";
    else {
      const parts = [];
      if (res.applied.length) parts.push("applied hunk" + (res.applied.length > 1 ? "s " : " ") + res.applied.join(", "));
      if (res.rejected.length) parts.push("rejected hunk" + (res.rejected.length > 1 ? "s " : " ") + res.rejected.join(", "));
      if (res.conflicts.length) parts.push("CONFLICT — your file was left as it was: " + res.conflicts.map((c) => "hunk " + c.hunk_id + " (" + c.reason + ")").join("; "));
      out.textContent = parts.join("; ") || "nothing to do";
      out.className = res.conflicts.length ? "error" : "ok";
    }
    ui.chosen.clear();
    await loadDetail();
  } catch (e) {
    out.textContent = e.message;
    out.className = "error";
  }
}

// ------------------------------------------------------------------ receipts charts

let chartTimer = null;
function scheduleCharts() {
  if (chartTimer) return;
  chartTimer = setTimeout(() => { chartTimer = null; loadCharts(); }, 500);
}

const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const colour = (i) => PALETTE[i % PALETTE.length];

function chart(id, config) {
  if (ui.charts[id]) ui.charts[id].destroy();
  const dark = document.body.classList.contains("dark");
  Chart.defaults.color = dark ? "#ddd" : "#333";
  Chart.defaults.borderColor = dark ? "#444" : "#ddd";
  config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false,
    plugins: { legend: { position: "bottom" } } }, config.options || {});
  ui.charts[id] = new Chart(document.getElementById(id), config);
}

async function loadCharts() {
  if (typeof Chart === "undefined") return;
  const mine = ++chartSeq;
  const data = await getJSON("/api/receipts");
  if (mine !== chartSeq) return;  // a newer read is on its way
  ui.receiptsStale = false;
  document.body.dataset.charts = String(data.receipts);
  $("#receipts-total").textContent = data.receipts + " receipts · total spent " + money(data.total_usd);
  const models = Object.keys(data.cost);
  const day = (d) => Date.parse(d + "T00:00:00");  // the daemon's local day, drawn at its start
  const times = models.flatMap((m) => data.cost[m].map(([d]) => day(d)));
  const t0 = Math.min(...times), t1 = Math.max(...times), pad = Math.max(30_000, (t1 - t0) * 0.05);
  chart("chart-cost", { type: "line", data: { datasets: models.map((m, i) => ({ label: m, data: data.cost[m].map(([d, y]) => ({ x: day(d), y })),
    borderColor: colour(i), backgroundColor: colour(i), stepped: true, pointRadius: 2 })) },
  options: { scales: { x: { type: "linear", min: t0 - pad, max: t1 + pad, title: { display: true, text: "time" },
    ticks: { callback: (v) => (t1 - t0 > 2 * 86400_000 ? new Date(v).toLocaleDateString() : new Date(v).toLocaleTimeString()) } }, y: { title: { display: true, text: "USD" }, beginAtZero: true } } } });
  chart("chart-tokens", { type: "bar", data: { labels: models, datasets: ["input", "output", "reasoning"].map((k, i) => ({
    label: k, data: models.map((m) => data.tokens[m][k]), backgroundColor: colour(i) })) },
  options: { scales: { x: { stacked: true, title: { display: true, text: "model" } }, y: { stacked: true, beginAtZero: true, title: { display: true, text: "tokens" } } } } });
  const e = data.wall.edges;
  const labels = e.slice(0, -1).map((a, i) => a.toFixed(1) + "–" + e[i + 1].toFixed(1));
  chart("chart-wall", { type: "bar", data: { labels, datasets: Object.keys(data.wall.counts).map((m, i) => ({
    label: m, data: data.wall.counts[m], backgroundColor: colour(models.indexOf(m) >= 0 ? models.indexOf(m) : i) })) },
  options: { scales: { x: { stacked: true, title: { display: true, text: "seconds per attempt" } },
    y: { stacked: true, beginAtZero: true, title: { display: true, text: "attempts" }, ticks: { precision: 0 } } } } });
  chart("chart-rates", { type: "bar", data: { labels: data.rates.map((r) => r.model), datasets: [
    { label: "approval rate (hunks)", data: data.rates.map((r) => r.approval === null ? null : r.approval * 100), backgroundColor: colour(2) },
    { label: "check-pass rate", data: data.rates.map((r) => r.check === null ? null : r.check * 100), backgroundColor: colour(0) }] },
  options: { scales: { x: { title: { display: true, text: "model" } }, y: { min: 0, max: 100, title: { display: true, text: "%" } } } } });
}

// ------------------------------------------------------------------ routing and start

function route() {
  const hash = location.hash || "#/";
  const m = hash.match(/^#\/task\/(.+)$/);
  ui.view = m ? "detail" : hash === "#/receipts" ? "receipts" : "overview";
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== ui.view;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("current", a.dataset.view === ui.view);
  document.body.dataset.view = ui.view;
  if (m) {
    if (ui.taskId !== decodeURIComponent(m[1])) { ui.chosen.clear(); $("#action-result").textContent = ""; }
    ui.taskId = decodeURIComponent(m[1]);
    loadDetail();
  } else ui.taskId = null;
  if (ui.view === "receipts" && ui.receiptsStale) loadCharts();
}

function start() {
  const st = $("#f-state");
  for (const s of STATES) st.append(h("option", { value: s }, s.toLowerCase()));
  let typing = null;
  $("#f-words").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(firstPage, 200); });
  $("#filters").addEventListener("submit", (e) => e.preventDefault());
  st.addEventListener("change", firstPage);
  $("#f-model").addEventListener("change", firstPage);
  $("#prev").addEventListener("click", () => { ui.page = Math.max(0, ui.page - 1); loadTasks(); });
  $("#next").addEventListener("click", () => {
    if (!ui.next) return;
    ui.cursors[ui.page + 1] = ui.next;
    ui.page += 1;
    loadTasks();
  });
  $("#approve").addEventListener("click", () => review("approve"));
  $("#reject").addEventListener("click", () => review("reject"));
  $("#cancel").addEventListener("click", () => review("cancel"));
  for (const r of document.querySelectorAll('input[name="layout"]')) {
    r.addEventListener("change", () => { ui.layout = r.value; if (ui.detail) drawDetail(); });
  }
  if (localStorage.getItem("pasd-theme") === "dark" ||
      (!localStorage.getItem("pasd-theme") && matchMedia("(prefers-color-scheme: dark)").matches)) document.body.classList.add("dark");
  $("#theme").addEventListener("click", () => {
    document.body.classList.toggle("dark");
    localStorage.setItem("pasd-theme", document.body.classList.contains("dark") ? "dark" : "light");
    if (ui.view === "receipts") loadCharts();
  });
  setInterval(() => {
    for (const td of document.querySelectorAll("td.elapsed")) if (td.dataset.since) td.textContent = ago(+td.dataset.since);
  }, 1000);
  window.addEventListener("hashchange", route);
  route();
  connect();
}

start();

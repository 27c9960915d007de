/* estate-gateway console: plain JS, no build step, no CDN.
 * The server renders only the views this role may use; this script fills them from the
 * JSON API and keeps them live over Server-Sent Events (/api/v1/stream).
 * Writes send X-CSRF-Token (the session's CSRF value from the page config). */
"use strict";

const CFG = JSON.parse(document.getElementById("console-config").textContent);
const L = (key) => CFG.labels[key] || key;
const $ = (id) => document.getElementById(id);
const API = "/api/v1";

const state = {
  alarms: new Map(),          // id -> alarm
  alarmsAvailable: true,
  enrolment: null,            // {id, door, unit}
  verifyCard: null,
  unitShown: null,
  meterShown: null,
  audio: null,
};

/* ---------------------------------------------------------------- helpers */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (method !== "GET") {
    headers["X-CSRF-Token"] = CFG.csrf;
    headers["Content-Type"] = "application/json";
  }
  let resp;
  try {
    resp = await fetch(API + path, { method, headers, credentials: "same-origin",
                                      body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    return { ok: false, status: 0, data: { error: { code: "network", message: String(e) } } };
  }
  if (resp.status === 401) { window.location.href = "/login"; }
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  return { ok: resp.ok, status: resp.status, data };
}

function errText(r) {
  const e = r.data && r.data.error;
  return L("err.generic") + (e ? `: ${e.message || e.code}` : ` (${r.status})`);
}

let toastTimer = null;
function toast(text, bad) {
  const t = $("toast");
  t.textContent = text;
  t.className = "toast show" + (bad ? " bad" : "");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.className = "toast"; }, 4000);
}

function fmtTime(ts) {
  if (!ts) return "";
  const d = new Date(ts);
  if (isNaN(d)) return String(ts);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getMonth() + 1}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** At most one call per ``ms``, the last request always honoured (for lists fed by frequent events). */
function throttle(fn, ms) {
  let timer = null, last = 0;
  return (...args) => {
    if (timer) return;
    const wait = Math.max(0, last + ms - Date.now());
    timer = setTimeout(() => { timer = null; last = Date.now(); fn(...args); }, wait);
  };
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

/** A confirmation dialog (a real <dialog>, not window.confirm, so it looks the same on phones). */
function confirmDialog(text, extra) {
  const dlg = $("confirm-dialog");
  $("confirm-text").textContent = text;
  const box = $("confirm-extra");
  box.replaceChildren(...(extra ? [extra] : []));
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true });
    dlg.returnValue = "";
    dlg.showModal();
  });
}

/* ---------------------------------------------------------------- tabs */
function showView(name) {
  for (const v of document.querySelectorAll(".view")) v.classList.toggle("active", v.dataset.view === name);
  for (const t of document.querySelectorAll(".tab")) t.setAttribute("aria-selected", t.dataset.view === name);
  try { localStorage.setItem("egw.view", name); } catch (e) { /* private mode */ }
  if (name === "meters") loadMeters();
}

function initTabs() {
  for (const t of document.querySelectorAll(".tab")) t.addEventListener("click", () => showView(t.dataset.view));
  let start = CFG.views[0];
  try { const saved = localStorage.getItem("egw.view"); if (CFG.views.includes(saved)) start = saved; } catch (e) { /* */ }
  const hash = window.location.hash.replace("#", "");
  if (CFG.views.includes(hash)) start = hash;
  showView(start);
}

/* ---------------------------------------------------------------- sound */
function initSound() {
  const btn = $("sound-toggle");
  const enable = () => {
    if (!state.audio) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      state.audio = new Ctx();
    }
    state.audio.resume().then(() => { btn.textContent = L("sound.on"); btn.classList.add("on"); });
  };
  btn.addEventListener("click", enable);
  // any click on the page is a gesture the browser accepts for starting audio
  document.addEventListener("click", () => { if (state.audio && state.audio.state !== "running") enable(); });
  if (!CFG.views.includes("duty")) btn.classList.add("hidden");
  setInterval(() => { if (unackedCount() > 0) beep(); }, 2500);
}

function beep() {
  const ctx = state.audio;
  if (!ctx || ctx.state !== "running") return;
  const now = ctx.currentTime;
  for (const [i, freq] of [[0, 880], [1, 660]]) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.25, now + i * 0.25);
    gain.gain.exponentialRampToValueAtTime(0.001, now + i * 0.25 + 0.22);
    osc.connect(gain).connect(ctx.destination);
    osc.start(now + i * 0.25);
    osc.stop(now + i * 0.25 + 0.23);
  }
}

/* ---------------------------------------------------------------- alarms */
const KIND_RANK = { fire: 0, smoke: 1, panic: 2, burglary: 3, fault: 4, supervisory: 5, other: 6, test: 7 };
const CLOSED_STATES = new Set(["closed", "cleared"]);

function normAlarm(a) {
  const id = String(a.alarm || a.id);
  const st = a.state || "raised";
  const acked = Boolean(a.acknowledged || a.acknowledged_at || a.acked_at || a.ack_by || a.acknowledged_by)
    || ["acknowledged", "acked", "closed"].includes(st);
  return {
    id, kind: a.kind || "other", state: st, acked,
    restored: Boolean(a.restored || a.restored_at) || st === "restored",
    zone: a.zone, building: a.building, name: a.name || a.zone_name || "", text: a.text || a.description || "",
    code: a.code, receiver: a.receiver, account: a.account,
    raised_at: a.raised_at || a.ts || a.created_at || a.first_at,
    by: a.acked_by || a.acknowledged_by || a.ack_by || a.by || "",
    note: a.note || a.ack_note || "",
    escalations: Number(a.escalations || 0), repeats: Number(a.repeats || 0),
  };
}

function unackedCount() {
  let n = 0;
  for (const a of state.alarms.values()) if (!a.acked) n += 1;
  return n;
}

async function loadAlarms() {
  if (!$("alarm-list")) return;
  let r = await api("GET", "/alarms?state=open");
  if (r.status === 422) r = await api("GET", "/alarms");
  if (r.status === 404 || r.status === 405) {
    state.alarmsAvailable = false;
    $("alarms-na").classList.remove("hidden");
    renderAlarms();
    return;
  }
  if (!r.ok) return;
  state.alarmsAvailable = true;
  $("alarms-na").classList.add("hidden");
  const items = Array.isArray(r.data) ? r.data : (r.data.items || r.data.alarms || []);
  const fresh = new Map();
  for (const raw of items) {
    const a = normAlarm(raw);
    if (!CLOSED_STATES.has(a.state)) fresh.set(a.id, a);
  }
  state.alarms = fresh;
  renderAlarms();
}
const reloadAlarms = debounce(loadAlarms, 300);

function sortedAlarms() {
  return [...state.alarms.values()].sort((a, b) =>
    (KIND_RANK[a.kind] ?? 6) - (KIND_RANK[b.kind] ?? 6)
    || Number(a.acked) - Number(b.acked)
    || String(b.raised_at || "").localeCompare(String(a.raised_at || "")));
}

function renderAlarms() {
  const list = $("alarm-list");
  if (!list) return;
  const items = sortedAlarms();
  list.replaceChildren(...items.map(alarmItem));
  $("alarms-empty").classList.toggle("hidden", items.length > 0);
  const n = unackedCount();
  $("alarm-count").textContent = items.length ? `${items.length}` + (n ? ` · ${L("alarms.new")} ${n}` : "") : "";
  document.title = (n ? `(${n}) ` : "") + document.title.replace(/^\(\d+\) /, "");
}

function alarmItem(a) {
  const classes = ["alarm", `kind-${a.kind}`, a.acked ? "acked" : "unacked"];
  if (a.restored) classes.push("restored");
  const where = [a.building ? `${L("alarms.building")} ${a.building}` : "",
                 a.zone !== undefined && a.zone !== null ? `${L("alarms.zone")} ${a.zone}` : "", a.name]
    .filter(Boolean).join(" · ");
  const status = a.acked ? `${L("alarms.acked")}${a.by ? " (" + a.by + ")" : ""}` : L("alarms.new");
  const li = el("li", { class: classes.join(" "), dataset: { alarm: a.id, kind: a.kind } },
    el("div", { class: "alarm-head" },
      el("span", { class: "alarm-kind" }, L(`kind.${a.kind}`)),
      el("span", { class: "alarm-where" }, where),
      el("time", { class: "alarm-time" }, fmtTime(a.raised_at))),
    el("div", { class: "alarm-body" },
      el("span", { class: "alarm-text" }, a.text || (a.code ? `#${a.code}` : "")),
      el("span", { class: "alarm-status" }, status + (a.restored ? ` · ${L("alarms.restored")}` : "")),
      a.escalations ? el("span", { class: "badge escalated" }, `${L("alarms.escalated")} ×${a.escalations}`) : null,
      a.repeats ? el("span", { class: "badge" }, `×${a.repeats + 1}`) : null));
  if (CFG.can.ack && !a.acked) {
    li.append(el("button", { type: "button", class: "ack primary", dataset: { alarm: a.id },
                             onclick: () => ackAlarm(a) }, L("alarms.ack")));
  }
  return li;
}

async function ackAlarm(a) {
  const note = el("textarea", { id: "ack-note", rows: 3, maxlength: 1000, placeholder: L("alarms.note") });
  const ok = await confirmDialog(`${L("alarms.ack.title")}: ${L("kind." + a.kind)} ${a.name || ""}`, note);
  if (!ok) return;
  const r = await api("POST", `/alarms/${encodeURIComponent(a.id)}/ack`, { note: note.value });
  if (!r.ok) { toast(r.status === 404 && !state.alarmsAvailable ? L("na.route") : errText(r), true); return; }
  a.acked = true;
  renderAlarms();
  toast(L("alarms.acked"));
  reloadAlarms();
}

function onAlarmEvent(ev) {
  const d = ev.data || {};
  const id = String(d.alarm || "");
  if (!id) return;
  if (ev.type === "alarm.raised") {
    state.alarms.set(id, normAlarm({ ...d, raised_at: ev.ts, state: "raised" }));
  } else if (ev.type === "alarm.acknowledged") {
    const a = state.alarms.get(id);
    if (a) { a.acked = true; a.by = d.by || a.by; }
  } else if (ev.type === "alarm.restored") {
    const a = state.alarms.get(id);
    if (a) a.restored = true;
  } else if (ev.type === "alarm.escalated") {
    const a = state.alarms.get(id);
    if (a) a.escalations = Math.max(a.escalations + 1, Number(d.count || 0));
  } else if (ev.type === "alarm.closed") {
    state.alarms.delete(id);
  }
  renderAlarms();
  if (ev.type === "alarm.raised") beep();
  if (state.alarmsAvailable) reloadAlarms();
}

/* ---------------------------------------------------------------- doors */
async function loadDoors() {
  if (!$("door-board")) return;
  const r = await api("GET", "/doors");
  if (r.status === 404) { $("doors-na").classList.remove("hidden"); return; }
  if (!r.ok) return;
  const items = r.data.items || [];
  $("door-board").replaceChildren(...items.map(doorTile));
}
const reloadDoors = debounce(loadDoors, 200);

function doorTile(d) {
  const st = d.state || "unknown";
  const tile = el("div", { class: `door state-${st}`, dataset: { door: d.id, state: st } },
    el("div", { class: "door-name" }, d.name || d.id),
    el("div", { class: "door-meta" }, d.id, d.building ? ` · ${L("alarms.building")} ${d.building}` : ""),
    el("div", { class: "door-state" }, L(`door.${st}`), el("time", {}, fmtTime(d.since))));
  if (CFG.can.unlock) {
    tile.append(el("button", { type: "button", class: "unlock", dataset: { door: d.id }, disabled: st === "offline",
                               onclick: () => unlockDoor(d) }, L("doors.unlock")));
  }
  return tile;
}

async function unlockDoor(d) {
  const ok = await confirmDialog(`${L("doors.unlock.confirm")} ${d.name || d.id}`);
  if (!ok) return;
  const r = await api("POST", `/doors/${encodeURIComponent(d.id)}/unlock`, {});
  if (!r.ok) { toast(errText(r), true); return; }
  toast(`${L("doors.unlocked.ok")}: ${d.name || d.id}`);
  loadDoors();
}

/* ---------------------------------------------------------------- device health */
async function loadHealth() {
  if (!$("device-list")) return;
  let r;
  try { r = await fetch(API + "/health", { credentials: "same-origin" }); } catch (e) { return; }
  if (!r.ok) return;
  const h = await r.json();
  const up = h.uplink || {};
  $("uplink").replaceChildren(
    el("dt", {}, L("devices.uplink")),
    el("dd", { class: up.connected ? "ok" : "bad", id: "uplink-state" },
       up.connected ? L("devices.connected") : L("devices.disconnected")),
    el("dt", {}, L("devices.outbox")),
    el("dd", { id: "outbox-depth", class: (h.outbox && h.outbox.depth > 0.8 * h.outbox.max_events) ? "bad" : "" },
       h.outbox ? `${h.outbox.depth} / ${h.outbox.max_events}` : "?"));
  const devices = (h.devices || []).slice().sort((a, b) => String(a.kind).localeCompare(b.kind) || String(a.id).localeCompare(b.id));
  $("device-list").replaceChildren(...devices.map((d) => {
    const st = d.online === true ? "online" : d.online === false ? "offline" : "pending";
    return el("li", { class: `device ${st}`, dataset: { device: d.id } },
      el("span", { class: "dot" }), el("span", { class: "device-kind" }, L(`kind.${d.kind}`)),
      el("span", { class: "device-id" }, d.id),
      el("span", { class: "device-state" }, L(`devices.${st}`) + (d.reason ? ` (${d.reason})` : "")),
      d.errors ? el("span", { class: "device-errors" }, `${L("devices.errors")} ${d.errors}`) : null);
  }));
}
const reloadHealth = debounce(loadHealth, 300);

/* ---------------------------------------------------------------- handover */
async function loadHandover() {
  if (!$("handover-report")) return;
  const r = await api("GET", "/handover");
  if (r.status === 404 || r.status === 405) {
    $("handover-na").classList.remove("hidden");
    $("handover-form").classList.add("hidden");
    return;
  }
  if (!r.ok) return;
  $("handover-report").replaceChildren(renderReport(r.data));
}

/** The handover report (from the alarms component): known sections first, each with its items. */
const REPORT_SECTIONS = ["open_alarms", "unacknowledged_alarms", "doors", "meters", "devices_offline", "alarms_since",
                         "events_since"];
/** Events that change what the handover report says (besides alarms and the handover itself). */
const HANDOVER_EVENTS = ["door.forced", "door.held_open", "device.offline", "device.online", "meter.offline",
                         "meter.online", "meter.anomaly"];

function renderReport(rep) {
  const box = el("div", { class: "report" });
  if (!rep || typeof rep !== "object") return box;
  const last = rep.last_handover;
  if (last && typeof last === "object") {
    box.append(el("p", { class: "hint", id: "handover-last" },
      `${L("handover.last")}: ${fmtTime(last.ts)} ${last.from || ""} → ${last.to || ""}${last.notes ? " · " + last.notes : ""}`));
  }
  const keys = REPORT_SECTIONS.concat(Object.keys(rep).filter((k) => !REPORT_SECTIONS.includes(k) && Array.isArray(rep[k])));
  for (const key of keys) {
    const value = rep[key];
    if (!Array.isArray(value)) continue;
    const label = L(`handover.${key}`) !== `handover.${key}` ? L(`handover.${key}`) : key;
    const more = rep[`${key}_truncated`] === true ? "+" : "";   // only the newest were sent
    const section = el("div", { class: "report-section" + (value.length ? " has-items" : ""), dataset: { section: key } },
      el("h3", {}, `${label} (${value.length}${more})`));
    if (value.length) {
      // event lists are oldest first: show the newest 50 of them; other lists their first 50
      const shown = isEventList(value) ? value.slice(-50) : value.slice(0, 50);
      section.append(el("ul", { class: "report-list" }, shown.map((item) =>
        el("li", isEvent(item) ? { dataset: { type: item.type } } : {},
           isEvent(item) ? summarizeEvent(item) : typeof item === "object" && item !== null ? summarize(item) : String(item)))));
    }
    box.append(section);
  }
  return box;
}

/** One line per report item, labelled: "Fire · B3 stairwell smoke · Building 3 · Zone 12 · #1 · restored". */
function summarize(o) {
  const keys = ["kind", "name", "building", "zone", "door", "meter", "id", "alarm", "state", "reason"];
  const label = (k, v) => {
    if (k === "kind") return L(`kind.${v}`);
    if (k === "building") return `${L("alarms.building")} ${v}`;
    if (k === "zone") return `${L("alarms.zone")} ${v}`;
    if ((k === "id" || k === "alarm") && typeof v === "number") return `#${v}`;
    if (k === "state") return L(`door.${v}`) !== `door.${v}` ? L(`door.${v}`) : v;
    return String(v);
  };
  const parts = keys.filter((k) => o[k] !== undefined && o[k] !== null && o[k] !== "").map((k) => label(k, o[k]));
  if (o.text && o.text !== o.kind && !parts.includes(o.text)) parts.push(o.text);
  return [...new Set(parts)].join(" · ");
}

/** A logged event in the report ({seq, ts, type, door|meter|device|alarm, reason, ...}), e.g. events_since. */
const isEvent = (o) => typeof o === "object" && o !== null && typeof o.type === "string" && typeof o.ts === "string";
const isEventList = (list) => list.length > 0 && list.every(isEvent);

/** "08:41 · Door forced · b3-u1", "09:02 · Device offline · r1 · Reader · no answer", "10:15 · Meter anomaly · m1 · Leak". */
function summarizeEvent(o) {
  const label = (prefix, v) => (L(`${prefix}.${v}`) !== `${prefix}.${v}` ? L(`${prefix}.${v}`) : String(v));
  const parts = [fmtTime(o.ts), label("event", o.type)];
  for (const k of ["door", "device", "meter", "unit"]) if (o[k] !== undefined && o[k] !== null && o[k] !== "") parts.push(String(o[k]));
  if (o.alarm !== undefined && o.alarm !== null) parts.push(`#${o.alarm}`);
  if (o.kind) parts.push(label("kind", o.kind));
  if (o.anomaly) parts.push(label("anomaly", o.anomaly));
  if (typeof o.seconds === "number") parts.push(`${o.seconds} s`);
  if (typeof o.count === "number" && o.count > 1) parts.push(`×${o.count}`);
  if (o.reason) parts.push(String(o.reason));
  return parts.join(" · ");
}

function initHandover() {
  const form = $("handover-form");
  if (!form) return;
  if (!CFG.can.handover) { form.classList.add("hidden"); return; }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { from: $("handover-from").value, to: $("handover-to").value, notes: $("handover-notes").value };
    const r = await api("POST", "/handover", body);
    if (!r.ok) { toast(errText(r), true); return; }
    toast(L("handover.done"));
    $("handover-notes").value = "";
    loadHandover();
  });
}

/* ---------------------------------------------------------------- activity feed */
function addActivity(ev) {
  const list = $("activity");
  if (!list) return;
  const d = ev.data || {};
  const what = [d.door, d.card, d.alarm, d.meter, d.device, d.reason, d.kind, d.state].filter((x) => x !== undefined && x !== null && x !== "").join(" · ");
  list.prepend(el("li", { dataset: { type: ev.type } }, el("time", {}, fmtTime(ev.ts)), " ",
                  el("code", {}, ev.type), " ", what));
  while (list.childElementCount > 40) list.lastElementChild.remove();
}

/* ---------------------------------------------------------------- technician: enrolment */
function initEnrolment() {
  const form = $("enrol-form");
  if (!form) return;
  const kind = $("enrol-kind");
  const [hFrom, hTo] = (CFG.worker_hours || "08:00-18:00").split("-");
  $("enrol-from").value = hFrom; $("enrol-to").value = hTo;
  const toggle = () => $("worker-fields").classList.toggle("hidden", kind.value !== "worker");
  kind.addEventListener("change", toggle); toggle();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = {
      door: $("enrol-door").value, unit: $("enrol-unit").value.trim(), holder: $("enrol-holder").value.trim(),
      holder_kind: kind.value,
      doors: $("enrol-scope").value.split(/[,，]/).map((s) => s.trim()).filter(Boolean),
    };
    if (kind.value === "worker") {
      if ($("enrol-until").value) body.valid_until = $("enrol-until").value;
      body.schedule = [{ days: CFG.worker_days, from: $("enrol-from").value, to: $("enrol-to").value }];
    }
    const r = await api("POST", "/enrolments", body);
    if (!r.ok) { showEnrolStatus("bad", errText(r)); return; }
    state.enrolment = { id: r.data.id, door: r.data.door, unit: body.unit };
    const doorName = (CFG.doors.find((d) => d.id === r.data.door) || {}).name || r.data.door;
    showEnrolStatus("waiting", `${L("enrol.waiting")} ${doorName}`);
    pollEnrolment();
  });
}

function showEnrolStatus(kind, text) {
  const box = $("enrol-status");
  box.className = `status-box ${kind}`;
  box.dataset.state = kind;
  box.textContent = text;
}

let enrolTimer = null;
async function pollEnrolment() {
  clearTimeout(enrolTimer);
  const en = state.enrolment;
  if (!en) return;
  const r = await api("GET", `/enrolments/${encodeURIComponent(en.id)}`);
  if (r.ok && r.data.state === "done") {
    state.enrolment = null;
    showEnrolStatus("done", `${L("enrol.done")}: ${r.data.card}`);
    showVerification(r.data.card);
    showCards(en.unit);
    return;
  }
  if (r.ok && (r.data.state === "failed" || r.data.state === "expired" || r.data.state === "cancelled")) {
    state.enrolment = null;
    showEnrolStatus("bad", `${L(r.data.state === "expired" ? "enrol.expired" : "enrol.failed")}${r.data.error ? ": " + r.data.error : ""}`);
    return;
  }
  enrolTimer = setTimeout(pollEnrolment, 1000);
}

/* ---------------------------------------------------------------- technician: verification */
let verifyTimer = null;
async function showVerification(card) {
  state.verifyCard = card;
  clearTimeout(verifyTimer);
  $("verify-card").textContent = card;
  const r = await api("GET", `/cards/${encodeURIComponent(card)}/verification`);
  if (!r.ok) { $("verify-list").replaceChildren(el("li", { class: "bad" }, errText(r))); return; }
  const v = r.data;
  $("verify-list").replaceChildren(...(v.doors || []).map((d) =>
    el("li", { class: `verify ${d.verified ? "yes" : "no"}`, dataset: { door: d.door, verified: String(d.verified) } },
      el("span", { class: "dot" }), el("span", { class: "verify-door" }, d.name || d.door),
      el("span", { class: "verify-state" }, d.verified ? `${L("verify.yes")} ${fmtTime(d.at)}` : L("verify.no")))));
  $("verify-complete").classList.toggle("hidden", !v.complete);
  // events make it instant; the poll is the safety net if the stream is down
  if (!v.complete && state.verifyCard === card) verifyTimer = setTimeout(() => showVerification(card), 3000);
}

/* ---------------------------------------------------------------- technician: cards of a unit */
function initCards() {
  const form = $("cards-form");
  if (!form) return;
  form.addEventListener("submit", (e) => { e.preventDefault(); showCards($("cards-unit").value.trim()); });
}

const FEE_KINDS = ["resident", "family", "tenant"];

async function showCards(unit) {
  if (!unit || !$("cards-body")) return;
  state.unitShown = unit;
  $("cards-unit").value = unit;
  const r = await api("GET", `/cards?unit=${encodeURIComponent(unit)}`);
  if (!r.ok) { $("cards-summary").textContent = errText(r); return; }
  const items = r.data.items || [];
  const active = items.filter((c) => c.status === "active");
  const counted = active.filter((c) => FEE_KINDS.includes(c.holder_kind)).length;
  $("cards-summary").textContent = `${unit}: ${L("cards.count")} ${active.length}`;
  $("cards-summary").dataset.count = String(counted);
  const fee = $("cards-fee");
  if (counted > CFG.free_cards) { fee.textContent = L("cards.fee"); fee.classList.remove("hidden"); }
  else if (counted === CFG.free_cards) { fee.textContent = L("cards.fee.next"); fee.classList.remove("hidden"); }
  else fee.classList.add("hidden");
  $("cards-table").classList.toggle("hidden", items.length === 0);
  $("cards-body").replaceChildren(...items.map(cardRow));
}

function scheduleText(s) {
  if (!s) return "";
  if (!Array.isArray(s)) return String(s);
  return s.map((w) => `${(w.days || []).join("")} ${w.from}-${w.to}`).join("; ");
}

function cardRow(c) {
  const actions = el("td", { class: "actions" });
  if (CFG.can.enrol) {
    actions.append(el("button", { type: "button", class: "small", onclick: () => showVerification(c.card) }, L("cards.verify")));
  }
  if (CFG.can.revoke && c.status === "active") {
    actions.append(el("button", { type: "button", class: "small danger revoke", dataset: { card: c.card },
                                  onclick: () => revokeCard(c) }, L("cards.revoke")));
  }
  return el("tr", { class: `card-row ${c.status}`, dataset: { card: c.card } },
    el("td", { class: "mono" }, c.card, c.number !== null && c.number !== undefined ? el("small", {}, ` ${c.facility ?? ""}/${c.number}`) : null),
    el("td", {}, c.holder || ""), el("td", {}, L(`holder.${c.holder_kind}`)),
    el("td", {}, (c.doors || []).join(", ")), el("td", {}, c.valid_until ? fmtTime(c.valid_until) : ""),
    el("td", {}, scheduleText(c.schedule)),
    el("td", { class: `status-${c.status}` }, c.status === "active" ? L("cards.active") : L("cards.revoked")),
    actions);
}

async function revokeCard(c) {
  const ok = await confirmDialog(`${L("cards.revoke.confirm")} ${c.card}`);
  if (!ok) return;
  const r = await api("POST", `/cards/${encodeURIComponent(c.card)}/revoke`, { reason: "lost" });
  if (!r.ok) { toast(errText(r), true); return; }
  toast(`${L("cards.revoked")}: ${c.card}`);
  showCards(state.unitShown);
}

/* ---------------------------------------------------------------- meters */
async function loadMeters() {
  const box = $("meter-buildings");
  if (!box || !$("view-meters").classList.contains("active")) return;
  const r = await api("GET", "/meters");
  if (r.status === 404 || r.status === 405) { $("meters-na").classList.remove("hidden"); return; }
  if (!r.ok) return;
  $("meters-na").classList.add("hidden");
  const items = Array.isArray(r.data) ? r.data : (r.data.items || r.data.meters || []);
  const byBuilding = new Map();
  for (const m of items) {
    const b = m.building || String(m.unit || "").split("-")[0] || "?";
    if (!byBuilding.has(b)) byBuilding.set(b, []);
    byBuilding.get(b).push(m);
  }
  const sections = [...byBuilding.entries()].sort((a, b) => a[0].localeCompare(b[0], undefined, { numeric: true }))
    .map(([b, ms]) => el("section", { class: "building" }, el("h3", {}, `${L("meters.building")} ${b}`),
      el("div", { class: "table-wrap" }, el("table", { class: "meters" },
        el("thead", {}, el("tr", {}, ["id", "meters.unit", "meters.total", "meters.read_at", "meters.state", "meters.valve", "meters.anomaly"]
          .map((k) => el("th", {}, k === "id" ? "ID" : L(k))))),
        el("tbody", {}, ms.map(meterRow))))));
  box.replaceChildren(...(sections.length ? sections : [el("p", { class: "empty" }, L("none"))]));
}
const reloadMeters = throttle(loadMeters, 2000);
const reloadChart = throttle(() => { if (state.meterShown) showChart(state.meterShown); }, 5000);

function meterValues(m) {
  return m.values || (m.last && m.last.values) || (m.last_reading && m.last_reading.values) || {};
}

function meterRow(m) {
  const v = meterValues(m);
  const readAt = m.read_at || (m.last && m.last.read_at) || (m.last_reading && m.last_reading.read_at);
  const online = m.online === undefined ? (m.state ? m.state === "online" : null) : m.online;
  const anomalies = m.anomalies || (m.anomaly ? [m.anomaly] : []);
  const valve = m.valve && typeof m.valve === "object" ? m.valve.state : (m.valve_state || m.valve);
  return el("tr", { class: "meter-row", dataset: { meter: m.id }, onclick: () => showChart(m.id), tabindex: 0 },
    el("td", { class: "mono" }, m.id), el("td", {}, m.unit || ""),
    el("td", { class: "num" }, v.total_m3 !== undefined && v.total_m3 !== null ? Number(v.total_m3).toFixed(3) : "–"),
    el("td", {}, fmtTime(readAt)),
    el("td", { class: online === false ? "bad" : online ? "ok" : "" },
       online === false ? L("devices.offline") : online ? L("devices.online") : L("devices.pending")),
    el("td", {}, valve ? (L(`valve.${valve}`) !== `valve.${valve}` ? L(`valve.${valve}`) : valve) : ""),
    el("td", { class: anomalies.length ? "warn" : "" },
       anomalies.map((a) => { const k = typeof a === "object" ? a.kind : a; return L(`anomaly.${k}`); }).join(", ")));
}

async function showChart(meterId) {
  state.meterShown = meterId;
  const r = await api("GET", `/console/meters/${encodeURIComponent(meterId)}/history?limit=48`);
  $("meter-chart-panel").classList.remove("hidden");
  $("meter-chart-id").textContent = meterId;
  const pts = r.ok ? r.data.items.filter((p) => p.values && typeof p.values.total_m3 === "number") : [];
  $("meter-chart").replaceChildren(pts.length < 2 ? el("p", { class: "empty" }, L("meters.nodata")) : barChart(pts));
}

/** Consumption between successive readings as bars, drawn as inline SVG (no chart library needed). */
function barChart(pts) {
  const NS = "http://www.w3.org/2000/svg";
  const W = 600, H = 160, P = 28;
  const deltas = [];
  for (let i = 1; i < pts.length; i++) {
    deltas.push({ at: pts[i].read_at, v: Math.max(0, pts[i].values.total_m3 - pts[i - 1].values.total_m3) });
  }
  const max = Math.max(...deltas.map((d) => d.v), 0.001);
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  const bw = (W - P - 4) / deltas.length;
  const mk = (tag, attrs, text) => {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    return n;
  };
  svg.append(mk("line", { x1: P, y1: H - 18, x2: W, y2: H - 18, class: "axis" }));
  svg.append(mk("text", { x: 2, y: 12, class: "label" }, `${max.toFixed(3)} m³`));
  deltas.forEach((d, i) => {
    const h = (H - 36) * d.v / max;
    const rect = mk("rect", { x: P + 2 + i * bw, y: H - 18 - h, width: Math.max(1, bw - 2), height: h, class: "bar" });
    rect.append(mk("title", {}, `${fmtTime(d.at)}: ${d.v.toFixed(3)} m³`));
    svg.append(rect);
  });
  svg.append(mk("text", { x: P, y: H - 4, class: "label" }, fmtTime(deltas[0].at)));
  svg.append(mk("text", { x: W - 110, y: H - 4, class: "label" }, fmtTime(deltas[deltas.length - 1].at)));
  return svg;
}

/* ---------------------------------------------------------------- live stream */
function onEvent(ev) {
  addActivity(ev);
  const t = ev.type;
  if (t.startsWith("alarm.")) onAlarmEvent(ev);
  if (t.startsWith("door.") || t.startsWith("device.") || t.startsWith("access.")) reloadDoors();
  if (t.startsWith("device.") || t === "gateway.outbox_near_full") reloadHealth();
  if (t === "shift.handover" || t.startsWith("alarm.") || HANDOVER_EVENTS.includes(t)) reloadHandover();
  if (t.startsWith("meter.") && $("view-meters") && $("view-meters").classList.contains("active")) {
    reloadMeters();
    if (t === "meter.reading" && ev.data && ev.data.meter === state.meterShown) reloadChart();
  }
  if (t === "card.verified" && ev.data && ev.data.card === state.verifyCard) showVerification(state.verifyCard);
  if ((t === "card.issued" || t === "access.denied") && state.enrolment) pollEnrolment();
  if (t.startsWith("card.") && state.unitShown && ev.data && ev.data.unit === state.unitShown) showCards(state.unitShown);
}
const reloadHandover = debounce(loadHandover, 500);

function reloadAll() {
  loadAlarms(); loadDoors(); loadHealth(); loadHandover(); loadMeters();
  if (state.verifyCard) showVerification(state.verifyCard);
}

function initStream() {
  const live = $("live");
  const es = new EventSource(API + "/stream");
  let opened = false;
  es.addEventListener("open", () => {
    live.className = "live on"; live.textContent = L("live.on");
    if (opened) reloadAll();  // a reconnect: whatever happened while we were away
    opened = true;
  });
  es.addEventListener("error", () => { live.className = "live off"; live.textContent = L("live.off"); });
  es.addEventListener("ev", (msg) => {
    let ev;
    try { ev = JSON.parse(msg.data); } catch (e) { return; }
    onEvent(ev);
  });
  es.addEventListener("resync", reloadAll);
}

/* ---------------------------------------------------------------- start */
document.addEventListener("DOMContentLoaded", () => {
  initTabs();
  initSound();
  initHandover();
  initEnrolment();
  initCards();
  initStream();  // first, so no event committed while the lists load is missed
  reloadAll();
  setInterval(loadHealth, 5000);
  setInterval(loadDoors, 10000);
});

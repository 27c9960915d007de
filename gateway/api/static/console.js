/* estate-gateway console: plain JS, no build step, no CDN.
 * The server renders only the views this role may use; these scripts fill them from the
 * JSON API and keep them live over Server-Sent Events (/api/v1/stream).
 * Writes send X-CSRF-Token (the session's CSRF value from the page config).
 *
 * Files (classic scripts sharing one global scope, loaded in this order):
 *   dom.js      the page config, labels, el(), the API call, errors and toasts (shared with the commissioning page)
 *   console.js  helpers, labels, tabs, dialogs, alarm sound, event summaries
 *   duty.js     alarms and the alarm banner, doors, device health and the uplink banner, handover, latest events
 *   tech.js     enrolment with the scope picker, verification with each swipe's result, cards of a unit
 *   meters.js   meters by building, valve commands, the consumption chart
 *   start.js    the live stream and start-up */
"use strict";

const API = "/api/v1";

/* ---------------------------------------------------------------- labels (L, Lf, hasLabel: dom.js) */
/** The label of a code under a prefix ("reason" + "outside_schedule"), else the code itself. */
function Lc(prefix, code) {
  const key = `${prefix}.${code}`;
  return hasLabel(key) ? L(key) : String(code);
}
const HAN = /[\u3400-\u9fff]/;
/** Why a device or the uplink is down, in the page's language: the text of its code with its args filled
 *  in; without a known code, the words as they came where the page's language can carry them. */
function whyText(code, args, words) {
  if (code && hasLabel(`why.${code}`)) return Lf(`why.${code}`, args || {});
  return words && (CFG.lang !== "zh" || HAN.test(words)) ? String(words) : "";
}

const state = {
  alarms: new Map(),          // id -> alarm
  alarmsAvailable: true,
  enrolment: null,            // {id, door, unit}
  verifyCard: null,
  verifyResults: new Map(),   // door -> {ok, reason, at} of the card being verified (live)
  unitShown: null,
  meterShown: null,
  audio: null,
  view: null,
};

/* ---------------------------------------------------------------- helpers */
const api = (method, path, body) => apiCall(API, method, path, body);

const errCode = (r) => (r.data && r.data.error && r.data.error.code) || "";

/** This gateway has no such route (an area not configured, or an older build): not an error of the request. */
function routeMissing(r) {
  return r.status === 405 || (r.status === 404 && r.data && r.data.error && r.data.error.message === "Not Found");
}

const errText = (r) => errorText(r, () => (routeMissing(r) ? L("na.route") : ""));

function fmtTime(ts) {
  if (!ts) return "";
  const d = new Date(ts);
  if (isNaN(d)) return String(ts);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getMonth() + 1}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function fmtClock(ts) {
  const d = new Date(ts);
  if (!ts || isNaN(d)) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
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

/** A confirmation dialog (a real <dialog>, not window.confirm, so it looks the same on phones).
 *  ``validate`` (optional) returns a message while the input is not acceptable: the dialog then stays
 *  open and says so in words, instead of closing on a bad value. Resolves true for OK. */
function confirmDialog(text, extra, validate) {
  const dlg = $("confirm-dialog");
  const form = $("confirm-form");
  const error = $("confirm-error");
  $("confirm-text").textContent = text;
  $("confirm-extra").replaceChildren(...(extra ? [extra] : []));
  error.textContent = "";
  error.classList.add("hidden");
  return new Promise((resolve) => {
    const onSubmit = (e) => {
      if (!e.submitter || e.submitter.value !== "ok" || !validate) return;
      const problem = validate();
      if (!problem) return;
      e.preventDefault();
      error.textContent = problem;
      error.classList.remove("hidden");
      const first = $("confirm-extra").querySelector("textarea, input, select");
      if (first) first.focus();
    };
    form.addEventListener("submit", onSubmit);
    dlg.addEventListener("close", () => {
      form.removeEventListener("submit", onSubmit);
      resolve(dlg.returnValue === "ok");
    }, { once: true });
    dlg.returnValue = "";
    dlg.showModal();
  });
}

/* ---------------------------------------------------------------- tabs */
function showView(name) {
  state.view = name;
  for (const v of document.querySelectorAll(".view")) v.classList.toggle("active", v.dataset.view === name);
  for (const t of document.querySelectorAll(".tab")) t.setAttribute("aria-selected", t.dataset.view === name);
  try { localStorage.setItem("egw.view", name); } catch (e) { /* private mode */ }
  if (name === "meters" && typeof loadMeters === "function") loadMeters();
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
/* Browsers play sound only after a gesture on the page. Once an operator enabled it, the choice is
 * remembered (localStorage): after a reload the sound is wanted again at once, and if the browser still
 * waits for a gesture, the button says so and the first click anywhere resumes it. */
const SOUND_KEY = "egw.sound";

function soundWanted() {
  try { return localStorage.getItem(SOUND_KEY) === "on"; } catch (e) { return false; }
}

function showSoundState() {
  const btn = $("sound-toggle");
  const running = state.audio && state.audio.state === "running";
  const wanted = soundWanted();
  const key = running ? "sound.on" : wanted ? "sound.blocked" : "sound.enable";
  btn.replaceChildren(el("span", { class: "full" }, L(key)), el("span", { class: "short" }, L(`${key}.short`)));
  btn.classList.toggle("on", Boolean(running));
  btn.classList.toggle("blocked", wanted && !running);
  btn.dataset.sound = running ? "on" : wanted ? "blocked" : "off";
}

function enableSound() {
  if (!state.audio) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    state.audio = new Ctx();
    state.audio.addEventListener("statechange", showSoundState);
  }
  state.audio.resume().then(showSoundState, showSoundState);
  showSoundState();
}

function initSound() {
  const btn = $("sound-toggle");
  if (!CFG.views.includes("duty")) { btn.classList.add("hidden"); return; }
  btn.addEventListener("click", () => {
    try { localStorage.setItem(SOUND_KEY, "on"); } catch (e) { /* private mode: this page only */ }
    enableSound();
  });
  // any click on the page is a gesture the browser accepts for starting audio
  document.addEventListener("click", () => {
    if (soundWanted() && (!state.audio || state.audio.state !== "running")) enableSound();
  });
  if (soundWanted()) enableSound();
  showSoundState();
  // fire: a fast high triple every 1.2 s; anything else unacknowledged: a two-tone every 2.5 s
  let tick = 0;
  setInterval(() => {
    tick += 1;
    const top = typeof mostUrgent === "function" ? mostUrgent() : null;
    if (!top) return;
    if (FIRE_KINDS.has(top.kind)) beep(top.kind);
    else if (tick % 2 === 0) beep(top.kind);
  }, 1250);
}

const FIRE_KINDS = new Set(["fire", "smoke"]);

function beep(kind) {
  const ctx = state.audio;
  if (!ctx || ctx.state !== "running") return;
  const now = ctx.currentTime;
  const notes = FIRE_KINDS.has(kind) ? [[0, 1175], [0.18, 1175], [0.36, 1175]] : [[0, 880], [0.25, 660]];
  for (const [at, freq] of notes) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = FIRE_KINDS.has(kind) ? "square" : "sine";
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.25, now + at);
    gain.gain.exponentialRampToValueAtTime(0.001, now + at + 0.15);
    osc.connect(gain).connect(ctx.destination);
    osc.start(now + at);
    osc.stop(now + at + 0.16);
  }
}

/* ---------------------------------------------------------------- words for what happened */
const doorName = (id) => ((CFG.doors || []).find((d) => d.id === id) || {}).name || id;

/** An alarm's text in the page's language: the panel's own words on the English page; on the Chinese page
 *  Chinese words (a GB/T 26875 panel's own, or the code's text), never the English of a code table. */
function alarmText(a) {
  const own = a.text || "";
  if (CFG.lang !== "zh") {
    // "Fire" under a fire says nothing new: the panel's words only where they add to the kind
    if (own && [a.kind, L(`kind.${a.kind}`)].some((k) => String(k).toLowerCase() === own.toLowerCase())) return "";
    return own || (a.code ? `${L("alarms.code")} ${a.code}` : "");
  }
  if (HAN.test(own)) return own;
  const zh = CFG.alarm_texts && CFG.alarm_texts[a.code];
  if (zh) return zh;
  return a.code ? `${L("alarms.code")} ${a.code}` : "";
}

/** The reason an event carries, in words (the prefix depends on the event). */
function reasonWords(type, reason, d) {
  if (type === "door.unlocked" || type === "door.relocked") return Lc("unlock", reason);
  if (type === "card.revoked") return Lc("revoke", reason);
  if (type.startsWith("access.") || type === "card.verified") return Lc("reason", reason);
  if (type.startsWith("meter.")) return Lc("merror", reason);
  // device.offline...: the text of its code, else the driver's words where the page's language can carry them
  return whyText(d && d.reason_code, d && d.reason_args, reason);
}

/** One line for an event: "08:41 · Access denied · Building 3 main gate · 26:0a1b2c40 · outside its hours". */
function summarizeEvent(ev) {
  const d = ev.data && typeof ev.data === "object" ? ev.data : ev;
  const type = ev.type;
  const parts = [fmtTime(ev.ts), Lc("event", type)];
  if (d.door) parts.push(doorName(d.door));
  for (const k of ["device", "meter", "card", "unit"]) if (d[k] !== undefined && d[k] !== null && d[k] !== "") parts.push(String(d[k]));
  if (d.alarm !== undefined && d.alarm !== null) parts.push(`#${d.alarm}`);
  if (d.kind) parts.push(Lc(type.startsWith("meter.fault") ? "fault" : type.startsWith("meter.") ? "anomaly" : "kind", d.kind));
  if (type.startsWith("alarm.") && (d.text || d.code)) parts.push(alarmText(d));
  if (d.state && type === "meter.valve") parts.push(Lc("valve", d.state));
  if (d.read && d.commanded) parts.push(Lf("meters.mismatch", { read: Lc("valve", d.read), cmd: Lc("valve", d.commanded) }));
  if (d.anomaly) parts.push(Lc("anomaly", d.anomaly));
  if (d.shift) parts.push(Lc("shift", d.shift));
  if (type === "shift.handover" && d.from) parts.push(`${d.from} → ${d.to || ""}`);
  if (typeof d.seconds === "number") parts.push(`${d.seconds} s`);
  if (typeof d.count === "number" && d.count > 1) parts.push(`×${d.count}`);
  if (d.reason) parts.push(reasonWords(type, d.reason, d));
  if (d.why) parts.push(Lc("fee", d.why));
  if (d.by) parts.push(String(d.by));
  return [...new Set(parts.filter(Boolean))].join(" · ");
}

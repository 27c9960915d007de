/* The commissioning walk page: start a walk, see what is left per building (polled every 2 s), mark a step
 * not applicable or failed with a reason, finish and open the printed report. Plain JS, no build step.
 * Writes send X-CSRF-Token (the session's value from the page config). Steps turn "seen" only when the
 * gateway saw them happen: the page has no button that claims one done. $, CFG, L, Lf, el, apiCall, errorText, toast: dom.js. */
"use strict";

const API = "/api/v1/commissioning";
const POLL_MS = 2000;

const api = (method, path, body) => apiCall(API, method, path, body);

/** An error's text: the walk's own label for its code where there is one. */
const errText = (r) => errorText(r, (e) => (e && hasLabel(`comm.err.${e.code}`) ? L(`comm.err.${e.code}`) : ""));

function fmtTime(ts) {
  const d = new Date(ts);
  if (!ts || isNaN(d)) return ts ? String(ts) : "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getMonth() + 1}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

const buildingName = (b) => (b ? Lf("comm.building", { b }) : L("comm.building.none"));
const csv = (text) => text.split(/[,，\s]+/).map((s) => s.trim()).filter(Boolean);

/* ---------------------------------------------------------------- what was seen, in words */
function seenText(step) {
  const seen = step.seen || {};
  const out = Object.entries(seen.parts || {}).map(([part, ev]) => {
    let words = L(`comm.part.${part}`);
    if (ev.card) words += ` (${ev.card})`;
    if (ev.alarm) words += ` (#${ev.alarm})`;
    if (ev.values) words += " " + Object.entries(ev.values).map(([k, v]) => `${k} ${v}`).join(", ");
    if (ev.state) words += ` (${ev.state})`;
    return `${words} · ${fmtTime(ev.at)}`;
  });
  if (seen.marked) out.push(Lf("comm.was_marked", { status: L(`comm.status.${seen.marked.status}`), reason: seen.marked.reason }));
  return out.join("; ");
}

/* ---------------------------------------------------------------- the open walk */
const state = { run: null, timer: null };

function stepRow(run, device, step) {
  const open = run.state === "open";
  const row = el("li", { class: `step status-${step.status}`, dataset: { device: device.device, step: step.step } },
    el("span", { class: `pill status-${step.status}` }, L(`comm.status.${step.status}`)),
    el("span", { class: "step-name" }, L(`comm.step.${step.step}`)));
  const detail = el("div", { class: "step-detail" });
  if (step.status === "pending") detail.append(el("div", { class: "how" }, L(`comm.how.${step.step}`)));
  const seen = seenText(step);
  if (seen) detail.append(el("div", { class: "seen" }, seen));
  if (step.reason) detail.append(el("div", { class: "reason" }, `${L("comm.reason")}: ${step.reason} · ${step.by || ""}`));
  row.append(detail);
  if (open && CFG.can_walk && step.status !== "done") {
    row.append(el("div", { class: "step-actions" },
      el("button", { type: "button", class: "small mark-na", onclick: () => mark(run, device, step, "na") }, L("comm.mark.na")),
      el("button", { type: "button", class: "small danger mark-failed", onclick: () => mark(run, device, step, "failed") },
        L("comm.mark.failed"))));
  }
  return row;
}

function renderRun(run) {
  state.run = run;
  $("run").classList.remove("hidden");
  $("run-title").textContent = Lf("comm.run", { id: run.id });
  $("run-state").textContent = L(`comm.state.${run.state}`);
  $("run-state").className = `badge state-${run.state}`;
  $("run-result").textContent = L(`comm.result.${run.summary.result}`);
  $("run-result").className = `result result-${run.summary.result}`;
  let meta = Lf("comm.by_at", { by: run.started_by, at: fmtTime(run.started_at) });
  if (run.finished_at) meta += " · " + Lf("comm.finished_by_at", { by: run.finished_by, at: fmtTime(run.finished_at) });
  $("run-meta").textContent = meta + (run.note ? ` · ${run.note}` : "");
  $("run-counts").textContent = Lf("comm.counts", run.summary.steps);
  $("run-report").href = `${API}/${run.id}/report?lang=${CFG.lang}`;
  $("finish").classList.toggle("hidden", run.state !== "open");
  $("live-note").classList.toggle("hidden", run.state !== "open");
  $("run-buildings").replaceChildren(...run.buildings.map((b) => el("section", { class: "building", dataset: { building: b.building } },
    el("h3", {}, buildingName(b.building), " ",
      el("span", { class: `left ${b.pending ? "" : "none-left"}` }, b.pending ? Lf("comm.left", { n: b.pending }) : L("comm.all_done"))),
    el("div", { class: "devices" }, ...b.devices.map((d) => el("article", { class: "comm-device", dataset: { device: d.device } },
      el("header", {}, el("strong", {}, d.name), el("span", { class: "muted" }, ` ${L(`comm.kind.${d.kind}`)} · ${d.device}`)),
      el("ul", { class: "steps" }, ...d.steps.map((s) => stepRow(run, d, s)))))))));
}

async function loadRun(id) {
  const r = await api("GET", `/${id}`);
  if (!r.ok) { toast(errText(r), true); return; }
  renderRun(r.data);
  clearTimeout(state.timer);
  if (r.data.state === "open") state.timer = setTimeout(() => loadRun(id), POLL_MS);
}

function openRun(id) {
  history.replaceState(null, "", `#run=${id}`);
  loadRun(id);
}

/* ---------------------------------------------------------------- marks and the finish */
function mark(run, device, step, status) {
  const dlg = $("mark-dialog");
  $("mark-text").textContent = `${L(`comm.mark.${status}`)} · ` +
    Lf("comm.mark.title", { device: device.name, step: L(`comm.step.${step.step}`) });
  $("mark-reason").value = "";
  $("mark-error").classList.add("hidden");
  const form = $("mark-form");
  const onSubmit = async (e) => {
    if (!e.submitter || e.submitter.value !== "ok") return;
    e.preventDefault();
    const reason = $("mark-reason").value.trim();
    if (!reason) { showMarkError(L("comm.err.reason_required")); return; }
    const r = await api("POST", `/${run.id}/steps`, { device: device.device, step: step.step, status, reason });
    if (!r.ok) { showMarkError(errText(r)); return; }
    dlg.close("ok");
    toast(L("comm.marked"));
    loadRun(run.id);
  };
  form.addEventListener("submit", onSubmit);
  dlg.addEventListener("close", () => form.removeEventListener("submit", onSubmit), { once: true });
  dlg.showModal();
}

function showMarkError(text) {
  $("mark-error").textContent = text;
  $("mark-error").classList.remove("hidden");
}

function finish() {
  const run = state.run;
  if (!run) return;
  const dlg = $("finish-dialog");
  $("finish-text").textContent = Lf("comm.finish.confirm", { id: run.id, n: run.summary.steps.pending });
  $("finish-note").value = "";
  dlg.addEventListener("close", async () => {
    if (dlg.returnValue !== "ok") return;
    const r = await api("POST", `/${run.id}/finish`, { note: $("finish-note").value.trim() });
    if (!r.ok) { toast(errText(r), true); return; }
    toast(L("comm.finished"));
    renderRun(r.data);
    loadList();
  }, { once: true });
  dlg.returnValue = "";
  dlg.showModal();
}

/* ---------------------------------------------------------------- starting, and the list */
async function start(e) {
  e.preventDefault();
  const scope = $("scope").value;
  const body = { scope, note: $("note").value.trim() };
  if (scope === "building") body.buildings = csv($("buildings").value);
  if (scope === "devices") body.devices = csv($("devices").value);
  const r = await api("POST", "", body);
  if (!r.ok) { toast(errText(r), true); return; }
  toast(L("comm.started"));
  openRun(r.data.id);
  loadList();
}

async function loadList() {
  const r = await api("GET", "?limit=50");
  if (!r.ok) { toast(errText(r), true); return; }
  $("runs-none").classList.toggle("hidden", r.data.items.length > 0);
  $("run-list").replaceChildren(...r.data.items.map((run) => el("li", { class: `run-item state-${run.state}` },
    el("a", { href: `#run=${run.id}`, onclick: (e) => { e.preventDefault(); openRun(run.id); } }, Lf("comm.run", { id: run.id })),
    " ", el("span", { class: `badge state-${run.state}` }, L(`comm.state.${run.state}`)),
    " ", el("span", { class: `result result-${run.summary.result}` }, L(`comm.result.${run.summary.result}`)),
    " ", el("span", { class: "muted" }, Lf("comm.by_at", { by: run.started_by, at: fmtTime(run.started_at) })),
    " ", el("a", { href: `${API}/${run.id}/report?lang=${CFG.lang}`, target: "_blank", rel: "noopener", class: "small" },
      L("comm.report")))));
}

function init() {
  $("scope").addEventListener("change", () => {
    for (const kind of ["building", "devices"]) {
      for (const n of document.querySelectorAll(`.scope-${kind}`)) n.classList.toggle("hidden", $("scope").value !== kind);
    }
  });
  $("start-form").addEventListener("submit", start);
  $("finish").addEventListener("click", finish);
  loadList();
  const m = window.location.hash.match(/run=(\d+)/);
  if (m) openRun(Number(m[1]));
}

init();

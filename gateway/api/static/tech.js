/* The Cards view: enrolment by swipe with the doors picked from the site's list, verification at each
 * door with every swipe's result in words, the cards of a unit with revoke reasons and scope changes.
 * Operators get the register only (and may revoke). Needs console.js. */
"use strict";

/* ---------------------------------------------------------------- the scope picker */
/* What a card opens is chosen from the site's own doors, never typed: the whole site, a building,
 * a unit entrance, or single doors, from the doors in the page config. */
function scopeChoices() {
  const doors = CFG.doors || [];
  const buildings = [...new Set(doors.map((d) => d.building).filter(Boolean))]
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const units = [...new Set(doors.map((d) => d.unit).filter(Boolean))]
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  return [
    { group: "all", items: [{ value: "*", label: L("scope.all") }] },
    { group: "building", items: buildings.map((b) => ({ value: `building:${b}`, label: Lf("scope.building", { b }) })) },
    { group: "unit", items: units.map((u) => ({ value: `unit:${u}`, label: Lf("scope.unit", { u }) })) },
    { group: "door", title: L("scope.doors"),
      items: doors.map((d) => ({ value: d.id, label: d.name && d.name !== d.id ? `${d.name} (${d.id})` : d.id })) },
  ].filter((g) => g.items.length);
}

function scopePicker(name, selected) {
  const chosen = new Set(selected || []);
  const box = el("div", { class: "scope-picker", dataset: { picker: name } });
  for (const g of scopeChoices()) {
    const group = el("div", { class: `scope-group scope-${g.group}` }, g.title ? el("div", { class: "lbl" }, g.title) : null);
    for (const item of g.items) {
      group.append(el("label", { class: "check" },
        el("input", { type: "checkbox", name, value: item.value, checked: chosen.has(item.value) }), item.label));
    }
    box.append(group);
  }
  // doors also known to the card but not in this site's list (set by central) stay as they are
  for (const v of chosen) {
    if (!box.querySelector(`input[value="${CSS.escape(v)}"]`)) {
      box.append(el("label", { class: "check" }, el("input", { type: "checkbox", name, value: v, checked: true }), v));
    }
  }
  return box;
}

const pickedScope = (box) => [...box.querySelectorAll("input[type=checkbox]:checked")].map((i) => i.value);

/* ---------------------------------------------------------------- enrolment */
function initEnrolment() {
  const form = $("enrol-form");
  if (!form) return;
  const kind = $("enrol-kind");
  $("enrol-scope").append(scopePicker("scope", []));
  const [hFrom, hTo] = (CFG.worker_hours || "08:00-18:00").split("-");
  $("enrol-from").value = hFrom; $("enrol-to").value = hTo;
  // the site's worker rules bound the form: days outside access.worker_days are not offered, hours stay in worker_hours
  $("enrol-from").min = $("enrol-to").min = hFrom;
  $("enrol-from").max = $("enrol-to").max = hTo;
  const days = new Set(CFG.worker_days || [1, 2, 3, 4, 5]);
  for (let d = 1; d <= 7; d++) {
    $("enrol-days").append(el("label", { class: "check day" + (days.has(d) ? "" : " off") },
      el("input", { type: "checkbox", name: "day", value: String(d), checked: days.has(d), disabled: !days.has(d) }),
      L(`day.${d}`)));
  }
  // a worker's card opens single doors of the unit only (the access rules): the wider choices go away
  const toggle = () => {
    const worker = kind.value === "worker";
    $("worker-fields").classList.toggle("hidden", !worker);
    for (const g of $("enrol-scope").querySelectorAll(".scope-all, .scope-building, .scope-unit")) {
      g.classList.toggle("hidden", worker);
      if (worker) for (const i of g.querySelectorAll("input")) i.checked = false;
    }
  };
  kind.addEventListener("change", toggle); toggle();
  $("enrol-cancel").addEventListener("click", cancelEnrolment);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = enrolBody();
    if (typeof body === "string") { showFormError(body); return; }
    showFormError("");
    const r = await api("POST", "/enrolments", body);
    if (!r.ok) { showEnrolStatus("bad", errText(r)); return; }
    state.enrolment = { id: r.data.id, door: r.data.door, unit: body.unit };
    showEnrolStatus("waiting", `${L("enrol.waiting")} ${doorName(r.data.door)}`);
    pollEnrolment();
  });
}

/** The enrolment request from the form, or a message saying in words what is missing. */
function enrolBody() {
  const kind = $("enrol-kind").value;
  const unit = $("enrol-unit").value.trim();
  if (!unit) return `${L("enrol.unit")}: ${L("enrol.unit.hint")}`;
  const doors = pickedScope($("enrol-scope"));
  if (!doors.length) return L("enrol.scope.required");
  const body = { door: $("enrol-door").value, unit, holder: $("enrol-holder").value.trim(), holder_kind: kind, doors };
  if (kind === "worker") {
    const days = [...document.querySelectorAll("#enrol-days input:checked")].map((i) => Number(i.value));
    if (!days.length) return L("enrol.days.required");
    if ($("enrol-until").value) body.valid_until = $("enrol-until").value;
    body.schedule = [{ days, from: $("enrol-from").value, to: $("enrol-to").value }];
  }
  return body;
}

function showFormError(text) {
  const p = $("enrol-error");
  p.textContent = text;
  p.classList.toggle("hidden", !text);
}

function showEnrolStatus(kind, text) {
  const box = $("enrol-status");
  box.className = `status-box ${kind}`;
  box.dataset.state = kind;
  $("enrol-status-text").textContent = text;
  $("enrol-cancel").classList.toggle("hidden", kind !== "waiting");
}

async function cancelEnrolment() {
  const en = state.enrolment;
  if (!en) return;
  const path = `/enrolments/${encodeURIComponent(en.id)}`;
  let r = await api("DELETE", path);
  if (routeMissing(r)) r = await api("POST", `${path}/cancel`);
  if (!r.ok) { toast(errText(r), true); return; }
  state.enrolment = null;
  clearTimeout(enrolTimer);
  showEnrolStatus("cancelled", L("enrol.cancelled"));
}

let enrolTimer = null;
async function pollEnrolment() {
  clearTimeout(enrolTimer);
  const en = state.enrolment;
  if (!en) return;
  const r = await api("GET", `/enrolments/${encodeURIComponent(en.id)}`);
  if (state.enrolment !== en) return;  // cancelled meanwhile
  if (r.ok && r.data.state === "done") {
    state.enrolment = null;
    showEnrolStatus("done", `${L("enrol.done")}: ${r.data.card}`);
    showVerification(r.data.card);
    // the technician now walks from door to door: the list of doors comes into view (on a phone it is below)
    $("verify-panel").scrollIntoView({ block: "start" });
    showCards(en.unit);
    return;
  }
  if (r.ok && r.data.state === "cancelled") {
    state.enrolment = null;
    showEnrolStatus("cancelled", L("enrol.cancelled"));
    return;
  }
  if (r.ok && (r.data.state === "failed" || r.data.state === "expired")) {
    state.enrolment = null;
    showEnrolStatus("bad", `${L(r.data.state === "expired" ? "enrol.expired" : "enrol.failed")}${r.data.error ? ": " + r.data.error : ""}`);
    return;
  }
  enrolTimer = setTimeout(pollEnrolment, 1000);
}

/* ---------------------------------------------------------------- verification, with each swipe's result */
let verifyTimer = null;
const VERIFY_KEY = "egw.verifyCard";
async function showVerification(card) {
  if (state.verifyCard !== card) { state.verifyResults = new Map(); state.verifyLast = null; }
  state.verifyCard = card;
  // this tab remembers the card being verified: a reload reopens it with what the gateway kept
  try { sessionStorage.setItem(VERIFY_KEY, card); } catch (e) { /* private mode: this page only */ }
  clearTimeout(verifyTimer);
  $("verify-card").textContent = card;
  const r = await api("GET", `/cards/${encodeURIComponent(card)}/verification`);
  if (state.verifyCard !== card) return;
  if (!r.ok) { $("verify-list").replaceChildren(el("li", { class: "bad" }, errText(r))); return; }
  const v = r.data;
  // what the gateway kept: a door's last refusal and the newest swipe survive a page reload
  for (const d of v.doors || []) {
    if (d.refused && !d.verified && !state.verifyResults.has(d.door)) {
      state.verifyResults.set(d.door, { ok: false, reason: d.refused.reason, at: d.refused.at });
    }
  }
  if (!state.verifyLast && v.last) state.verifyLast = { ...v.last };
  $("verify-list").replaceChildren(...(v.doors || []).map(verifyItem));
  showLastSwipe(v.doors || []);
  $("verify-complete").classList.toggle("hidden", !v.complete);
  // events make it instant; the poll is the safety net if the stream is down
  if (!v.complete && state.verifyCard === card) verifyTimer = setTimeout(() => showVerification(card), 3000);
}

function verifyItem(d) {
  const res = state.verifyResults.get(d.door);
  let cls = "no", text = L("verify.no"), result = "none";
  if (d.verified) { cls = "yes"; text = `${L("verify.yes")} ${fmtTime(d.at)}`; result = "verified"; }
  else if (res && !res.ok) {
    cls = "denied"; result = "denied";
    text = `${Lf("verify.denied", { reason: res.reason ? Lc("reason", res.reason) : "" })} · ${fmtClock(res.at)}`;
  }
  return el("li", { class: `verify ${cls}`, dataset: { door: d.door, verified: String(d.verified), result,
                                                       reason: res && res.reason ? res.reason : null } },
    el("span", { class: "dot" }), el("span", { class: "verify-door" }, d.name || d.door),
    el("span", { class: "verify-state" }, text));
}

function showLastSwipe(doors) {
  const p = $("verify-last");
  const last = state.verifyLast;
  if (!last) { p.classList.add("hidden"); return; }
  const outside = !doors.some((d) => d.door === last.door);
  const result = last.ok ? L("verify.granted") : Lf("verify.denied", { reason: last.reason ? Lc("reason", last.reason) : "" });
  p.textContent = `${L("verify.last")}: ${doorName(last.door)}${outside ? " " + L("verify.outside") : ""} · ${result} · ${fmtClock(last.at)}`;
  p.className = `verify-last ${last.ok ? "ok" : "bad"}`;
  p.dataset.result = last.ok ? "granted" : "denied";
  p.dataset.reason = last.reason || "";
}

/** A swipe of the card being verified, anywhere: its result is shown at once, with the reason of a refusal. */
function onSwipeEvent(ev) {
  const d = ev.data || {};
  if (!state.verifyCard || d.card !== state.verifyCard || !d.door) return;
  const before = state.verifyResults.get(d.door);
  let ok = ev.type === "access.granted";
  let reason = d.reason || null;
  if (ev.type === "card.verified") {
    ok = d.ok !== false;
    // the decision's access.denied came first in the same commit and named the reason
    if (!ok && !reason && before && !before.ok) reason = before.reason;
  }
  const result = { ok, reason, at: ev.ts };
  state.verifyResults.set(d.door, result);
  state.verifyLast = { door: d.door, ...result };
  showVerification(state.verifyCard);
}

/* ---------------------------------------------------------------- cards of a unit */
function initCards() {
  const form = $("cards-form");
  if (!form) return;
  $("cards-unit").placeholder = L("enrol.unit.hint");
  form.addEventListener("submit", (e) => { e.preventDefault(); showCards($("cards-unit").value.trim()); });
  let saved = null;
  try { saved = sessionStorage.getItem(VERIFY_KEY); } catch (e) { /* private mode */ }
  if (saved && $("verify-panel")) showVerification(saved);
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
  return s.map((w) => `${(w.days || []).map((d) => L(`day.${d}`)).join(" ")} ${w.from}-${w.to}`).join("; ");
}

function scopeText(doors) {
  return (doors || []).map((v) => {
    if (v === "*") return L("scope.all");
    if (v.startsWith("building:")) return Lf("scope.building", { b: v.slice(9) });
    if (v.startsWith("unit:")) return Lf("scope.unit", { u: v.slice(5) });
    return doorName(v);
  }).join(", ");
}

function cardRow(c) {
  const actions = el("td", { class: "actions" });
  if (CFG.can.enrol) {
    actions.append(el("button", { type: "button", class: "small", onclick: () => showVerification(c.card) }, L("cards.verify")));
  }
  if (CFG.can.edit && c.status === "active") {
    actions.append(el("button", { type: "button", class: "small edit", dataset: { card: c.card },
                                  onclick: () => editScope(c) }, L("cards.edit")));
  }
  if (CFG.can.revoke && c.status === "active") {
    actions.append(el("button", { type: "button", class: "small danger revoke", dataset: { card: c.card },
                                  onclick: () => revokeCard(c) }, L("cards.revoke")));
  }
  const status = c.status === "active" ? L("cards.active")
    : `${L("cards.revoked")}${c.revoke_reason ? " · " + Lc("revoke", c.revoke_reason) : ""}`;
  return el("tr", { class: `card-row ${c.status}`, dataset: { card: c.card } },
    el("td", { class: "mono" }, c.card, c.number !== null && c.number !== undefined ? el("small", {}, ` ${c.facility ?? ""}/${c.number}`) : null),
    el("td", {}, c.holder || ""), el("td", {}, Lc("holder", c.holder_kind)),
    el("td", {}, scopeText(c.doors)), el("td", {}, c.valid_until ? fmtTime(c.valid_until) : ""),
    el("td", {}, scheduleText(c.schedule)),
    el("td", { class: `status-${c.status}` }, status),
    actions);
}

const REVOKE_REASONS = ["lost", "stolen", "moved_out", "damaged", "other"];

async function revokeCard(c) {
  const reason = el("select", { id: "revoke-reason" },
    REVOKE_REASONS.map((r) => el("option", { value: r }, L(`revoke.${r}`))));
  const note = el("input", { id: "revoke-note", maxlength: 200 });
  const box = el("div", { class: "stack" }, el("label", {}, L("cards.revoke.reason"), reason),
                 el("label", {}, L("cards.revoke.note"), note));
  const ok = await confirmDialog(`${L("cards.revoke.confirm")} ${c.card}`, box,
    () => (reason.value === "other" && !note.value.trim() ? L("cards.revoke.note.required") : null));
  if (!ok) return;
  const body = { reason: reason.value };
  if (note.value.trim()) body.note = note.value.trim();
  const r = await api("POST", `/cards/${encodeURIComponent(c.card)}/revoke`, body);
  if (!r.ok) { toast(errText(r), true); return; }
  toast(`${L("cards.revoked")}: ${c.card}`);
  showCards(state.unitShown);
}

async function editScope(c) {
  const picker = scopePicker("edit-scope", c.doors || []);
  const ok = await confirmDialog(`${L("cards.edit.title")} ${c.card}`, picker,
    () => (pickedScope(picker).length ? null : L("enrol.scope.required")));
  if (!ok) return;
  const r = await api("PATCH", `/cards/${encodeURIComponent(c.card)}`, { doors: pickedScope(picker) });
  if (!r.ok) { toast(errText(r), true); return; }
  toast(`${L("cards.updated")}: ${c.card}`);
  showCards(state.unitShown);
  if (state.verifyCard === c.card) showVerification(c.card);
}

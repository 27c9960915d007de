/* The duty view (operators): alarms and the banner that follows the operator to every tab,
 * doors with their holds and relock, device health and the uplink banner, the shift handover
 * (with the missed-handover banner) and the latest events. Needs console.js. */
"use strict";

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
    acked_at: a.acked_at || a.acknowledged_at || null,
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
  if (routeMissing(r)) {
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

/** The alarm the banner shows and the sound follows: unacknowledged, fire first. */
function mostUrgent() {
  const unacked = sortedAlarms().filter((a) => !a.acked);
  return unacked.length ? unacked[0] : null;
}

function alarmWhere(a) {
  return [a.building ? `${L("alarms.building")} ${a.building}` : "",
          a.zone !== undefined && a.zone !== null && a.zone !== 0 ? `${L("alarms.zone")} ${a.zone}` : "", a.name]
    .filter(Boolean).join(" · ");
}

function renderAlarms() {
  renderBanner();
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
  const classes = ["alarm", `kind-${a.kind}`, a.acked ? "acked" : "unacked", FIRE_KINDS.has(a.kind) ? "fire" : ""];
  if (a.restored) classes.push("restored");
  const status = [a.acked ? "" : L("alarms.new"), a.restored ? L("alarms.restored") : ""].filter(Boolean).join(" · ");
  const li = el("li", { class: classes.filter(Boolean).join(" "), dataset: { alarm: a.id, kind: a.kind } },
    el("div", { class: "alarm-head" },
      el("span", { class: "alarm-kind" }, L(`kind.${a.kind}`)),
      el("span", { class: "alarm-where" }, alarmWhere(a)),
      el("time", { class: "alarm-time" }, fmtTime(a.raised_at))),
    el("div", { class: "alarm-body" },
      el("span", { class: "alarm-text", title: a.text || null }, alarmText(a)),
      el("span", { class: "alarm-status" }, status),
      a.escalations ? el("span", { class: "badge escalated" }, `${L("alarms.escalated")} ×${a.escalations}`) : null,
      a.repeats ? el("span", { class: "badge" }, `×${a.repeats + 1}`) : null),
    a.acked ? el("div", { class: "alarm-ack" },
      el("span", { class: "alarm-ack-by" }, Lf("alarms.acked.by", { by: a.by || "?", at: fmtTime(a.acked_at) || "" })),
      a.note ? el("q", { class: "alarm-note" }, a.note) : null) : null);
  if (CFG.can.ack && !a.acked) {
    li.append(el("button", { type: "button", class: "ack primary", dataset: { alarm: a.id },
                             onclick: () => ackAlarm(a) }, L("alarms.ack")));
  }
  return li;
}

async function ackAlarm(a) {
  const note = el("textarea", { id: "ack-note", rows: 3, maxlength: 1000, placeholder: L("alarms.note.hint"),
                                "aria-label": L("alarms.note") });
  const title = `${L("alarms.ack.title")}: ${L("kind." + a.kind)} ${alarmWhere(a)}`;
  const ok = await confirmDialog(title, note, () => (note.value.trim() ? null : L("alarms.note.required")));
  if (!ok) return;
  const r = await api("POST", `/alarms/${encodeURIComponent(a.id)}/ack`, { note: note.value.trim() });
  if (!r.ok && errCode(r) !== "already_acknowledged") { toast(errText(r), true); return; }
  Object.assign(a, normAlarm(r.ok ? r.data : { ...a, acked_at: new Date().toISOString() }), { acked: true });
  renderAlarms();
  toast(L("alarms.acked"));
  reloadAlarms();
}

function onAlarmEvent(ev) {
  const d = ev.data || {};
  const id = String(d.alarm || "");
  if (!id) return;
  const a = state.alarms.get(id);
  if (ev.type === "alarm.raised") {
    state.alarms.set(id, normAlarm({ ...d, raised_at: ev.ts, state: "raised" }));
  } else if (ev.type === "alarm.acknowledged" && a) {
    Object.assign(a, { acked: true, by: d.by || a.by, note: d.note || a.note, acked_at: a.acked_at || ev.ts });
  } else if (ev.type === "alarm.restored" && a) {
    a.restored = true;
  } else if (ev.type === "alarm.escalated" && a) {
    a.escalations = Math.max(a.escalations + 1, Number(d.count || 0));
  } else if (ev.type === "alarm.closed") {
    state.alarms.delete(id);
  }
  renderAlarms();
  if (ev.type === "alarm.raised") beep(d.kind);
  if (state.alarmsAvailable) reloadAlarms();
}

/* ---------------------------------------------------------------- the alarm banner (every tab) */
function renderBanner() {
  const banner = $("alarm-banner");
  if (!banner) return;
  const top = mostUrgent();
  const n = unackedCount();
  markDutyTab(n, top);
  if (!top) { banner.className = "alarm-banner hidden"; delete banner.dataset.kind; return; }
  banner.className = `alarm-banner kind-${top.kind}` + (FIRE_KINDS.has(top.kind) ? " fire" : "");
  banner.dataset.kind = top.kind;
  banner.dataset.alarm = top.id;
  $("alarm-banner-kind").textContent = L(`kind.${top.kind}`);
  $("alarm-banner-text").textContent = [alarmWhere(top), alarmText(top), fmtClock(top.raised_at)].filter(Boolean).join(" · ");
  $("alarm-banner-more").textContent = n > 1 ? Lf("banner.more", { n: n - 1 }) : "";
}

/** The Duty tab carries the number of unacknowledged alarms (red, flashing for a fire) wherever one is. */
function markDutyTab(n, top) {
  const tab = $("tab-duty");
  if (!tab) return;
  tab.classList.toggle("alert", n > 0);
  tab.classList.toggle("fire", Boolean(top && FIRE_KINDS.has(top.kind)));
  let badge = tab.querySelector(".tab-badge");
  if (n > 0) {
    if (!badge) { badge = el("span", { class: "tab-badge" }); tab.append(badge); }
    badge.textContent = String(n);
  } else if (badge) badge.remove();
}

function initBanners() {
  const go = $("alarm-banner-go");
  if (go) {
    go.addEventListener("click", () => {
      const top = mostUrgent();
      showView("duty");
      if (!top) return;
      const item = document.querySelector(`.alarm[data-alarm="${CSS.escape(top.id)}"]`);
      if (item) item.scrollIntoView({ block: "nearest" });
      if (CFG.can.ack) ackAlarm(top);
    });
  }
  const missed = $("missed-banner-go");
  if (missed) {
    missed.addEventListener("click", () => { showView("duty"); $("handover-from").focus(); });
  }
}

/* ---------------------------------------------------------------- doors */
async function loadDoors() {
  if (!$("door-board")) return;
  const r = await api("GET", "/doors");
  if (routeMissing(r)) { $("doors-na").classList.remove("hidden"); return; }
  if (!r.ok) return;
  const items = r.data.items || [];
  $("door-board").replaceChildren(...items.map(doorTile));
}
const reloadDoors = debounce(loadDoors, 200);

/** Why a door is held released: the fire alarm (its id, kind, since when, still active or not) or the reason. */
function holdLine(h) {
  const fire = h.alarm !== undefined && h.alarm !== null;
  const what = fire ? Lf("doors.hold.fire", { alarm: h.alarm }) + (h.kind ? ` · ${Lc("kind", h.kind)}` : "")
    : `${L("doors.hold.other")}${h.reason ? " · " + Lc("unlock", h.reason) : ""}`;
  const since = h.since ? `${L("since")} ${fmtTime(h.since)}` : "";
  const status = h.active === true ? L("doors.hold.active") : h.active === false ? L("doors.hold.ended") : "";
  return el("div", { class: "door-hold" + (h.active ? " active" : ""), dataset: { alarm: fire ? String(h.alarm) : "" } },
    [what, since, status].filter(Boolean).join(" · "));
}

function doorTile(d) {
  const st = d.state || "unknown";
  const holds = Array.isArray(d.holds) ? d.holds : [];
  const released = holds.length > 0 || st === "unlocked";
  const tile = el("div", { class: `door state-${st}` + (holds.length ? " held" : ""),
                           dataset: { door: d.id, state: st, held: String(holds.length > 0) } },
    el("div", { class: "door-name" }, d.name || d.id),
    el("div", { class: "door-meta" }, d.id, d.building ? ` · ${L("alarms.building")} ${d.building}` : "",
       d.egress ? ` · ${L("doors.egress")}` : ""),
    el("div", { class: "door-state" }, L(`door.${st}`), el("time", {}, fmtTime(d.since))),
    holds.map(holdLine));
  if (released && CFG.can.relock) {
    tile.append(el("button", { type: "button", class: "relock danger", dataset: { door: d.id },
                               onclick: () => relockDoor(d, false, "") }, L("doors.relock")));
  } else if (CFG.can.unlock) {
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

/** Relock with a reason (audited); while the fire holding the door is active, a ticked confirmation too. */
async function relockDoor(d, mustConfirm, reasonBefore) {
  const fireActive = mustConfirm || (d.holds || []).some((h) => h.active === true);
  const reason = el("textarea", { id: "relock-reason", rows: 2, maxlength: 500, placeholder: L("doors.relock.reason.hint") });
  reason.value = reasonBefore;
  const box = el("div", { class: "stack" }, el("label", {}, L("doors.relock.reason"), reason));
  const tick = fireActive ? el("input", { type: "checkbox", id: "relock-confirm" }) : null;
  if (tick) box.append(el("p", { class: "bad strong" }, L("doors.relock.fire")), el("label", { class: "check" }, tick, L("doors.relock.confirm")));
  const ok = await confirmDialog(`${L("doors.relock.title")} ${d.name || d.id}`, box, () => {
    if (!reason.value.trim()) return L("doors.relock.reason.required");
    if (tick && !tick.checked) return L("doors.relock.confirm.required");
    return null;
  });
  if (!ok) return;
  const r = await api("POST", `/doors/${encodeURIComponent(d.id)}/relock`,
                      { reason: reason.value.trim(), confirm: Boolean(tick && tick.checked) });
  if (!r.ok && errCode(r) === "fire_active" && !tick) { relockDoor(d, true, reason.value); return; }
  if (!r.ok) { toast(errText(r), true); return; }
  toast(`${L("doors.relocked.ok")}: ${d.name || d.id}`);
  loadDoors();
}

/* ---------------------------------------------------------------- device health and the uplink banner */
async function loadHealth() {
  if (!$("device-list") && !$("uplink-banner")) return;
  let r;
  try { r = await fetch(API + "/health", { credentials: "same-origin" }); } catch (e) { return; }
  // 503 is /health saying "degraded" (the store cannot write): its body is the same report, and the duty room
  // must see it then most of all
  if (!r.ok && r.status !== 503) return;
  let h;
  try { h = await r.json(); } catch (e) { return; }
  showUplinkBanner(h);
  showStoreBanner(h);
  if (!$("device-list")) return;
  const up = h.uplink || {};
  $("uplink").replaceChildren(
    el("dt", {}, L("devices.uplink")),
    el("dd", { class: up.connected ? "ok" : "bad", id: "uplink-state",
               title: whyText(up.last_error_code, up.last_error_args, up.last_error) || null },
       up.connected ? L("devices.connected") : L("devices.disconnected")),
    // the node in use (host:port only: never a url's user part) and how often the link moved to another node
    el("dt", {}, L("devices.uplink_node")),
    el("dd", { id: "uplink-node" }, up.node ? hostPort(up.node) : L("none")),
    el("dt", {}, L("devices.failovers")),
    el("dd", { id: "uplink-failovers" }, typeof up.failovers === "number" ? String(up.failovers) : "?"),
    el("dt", {}, L("devices.outbox")),
    el("dd", { id: "outbox-depth", class: (h.outbox && h.outbox.depth > 0.8 * h.outbox.max_events) ? "bad" : "" },
       h.outbox ? `${h.outbox.depth} / ${h.outbox.max_events}` : "?"),
    el("dt", {}, L("devices.outbox_oldest")),
    // an outbox that stopped moving shows in its age long before its depth looks large
    el("dd", { id: "outbox-oldest", class: outboxAge(h) > 300 ? "bad" : "" },
       h.outbox && h.outbox.oldest_ts ? fmtAge(h.outbox.oldest_age_s) : L("none")));
  const devices = (h.devices || []).slice().sort((a, b) => String(a.kind).localeCompare(b.kind) || String(a.id).localeCompare(b.id));
  $("device-list").replaceChildren(...devices.map((d) => {
    const st = d.online === true ? "online" : d.online === false ? "offline" : "pending";
    // a device's reason in the page's language (its code's text; the driver's words only as a fallback)
    const words = whyText(d.reason_code, d.reason_args, d.reason);
    const why = words ? ` (${words})` : "";
    // a warning on a device that is still online (e.g. plain alarm blocks refused from a keyed account)
    const warn = d.warning ? whyText(d.warning_code, d.warning_args, d.warning) : "";
    return el("li", { class: `device ${st}` + (warn ? " warn" : ""), dataset: { device: d.id, reasonCode: d.reason_code || "" },
                      title: words || null },
      el("span", { class: "dot" }), el("span", { class: "device-kind" }, Lc("kind", d.kind)),
      el("span", { class: "device-id" }, d.id),
      el("span", { class: "device-state" }, L(`devices.${st}`) + why),
      warn ? el("span", { class: "device-warning", role: "note" }, `${L("devices.warning")}: ${warn}`) : null,
      d.errors ? el("span", { class: "device-errors" }, `${L("devices.errors")} ${d.errors}`) : null);
  }));
}
const reloadHealth = debounce(loadHealth, 300);

function showUplinkBanner(h) {
  const banner = $("uplink-banner");
  if (!banner) return;
  const up = h.uplink || {};
  const down = up.connected === false;
  banner.classList.toggle("hidden", !down);
  if (!down) return;
  $("uplink-banner-detail").textContent = [up.since ? `${L("since")} ${fmtTime(up.since)}` : "",
    Lf("banner.uplink.detail", { n: h.outbox ? h.outbox.depth : "?" }),
    h.outbox && h.outbox.oldest_ts ? Lf("banner.uplink.oldest", { age: fmtAge(h.outbox.oldest_age_s) }) : ""]
    .filter(Boolean).join(" · ");
}

/** The store cannot commit (a lock someone else holds, a full disk): events are not being recorded. */
function showStoreBanner(h) {
  const banner = $("store-banner");
  if (!banner) return;
  const st = h.store || {};
  const bad = h.status === "degraded" || st.ok === false;
  banner.classList.toggle("hidden", !bad);
  if (!bad) return;
  $("store-banner-detail").textContent = [st.error || h.reason || "", st.since ? `${L("since")} ${fmtTime(st.since)}` : ""]
    .filter(Boolean).join(" · ");
}

/** "mqtts://user@n1:8883" -> "n1:8883": the node's host and port, nothing else of its url. */
function hostPort(url) {
  const rest = String(url).replace(/^[a-z]+:\/\//i, "").split("/")[0];
  return rest.slice(rest.lastIndexOf("@") + 1);
}

function outboxAge(h) { return h.outbox && typeof h.outbox.oldest_age_s === "number" ? h.outbox.oldest_age_s : 0; }

/** Seconds as the largest whole unit or two ("3 h 12 min", "45 s"), in the page's language. */
function fmtAge(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  if (s < 60) return Lf("age.s", { n: s });
  if (s < 3600) return Lf("age.min", { n: Math.floor(s / 60) });
  if (s < 86400) {
    const m = Math.floor(s / 60) % 60;
    return [Lf("age.h", { n: Math.floor(s / 3600) }), m ? Lf("age.min", { n: m }) : ""].filter(Boolean).join(" ");
  }
  const h = Math.floor(s / 3600) % 24;
  return [Lf("age.d", { n: Math.floor(s / 86400) }), h ? Lf("age.h", { n: h }) : ""].filter(Boolean).join(" ");
}

/* ---------------------------------------------------------------- handover */
async function loadHandover() {
  if (!$("handover-report")) return;
  const r = await api("GET", "/handover");
  if (routeMissing(r)) {
    $("handover-na").classList.remove("hidden");
    $("handover-form").classList.add("hidden");
    return;
  }
  if (!r.ok) return;
  $("handover-report").replaceChildren(renderReport(r.data));
  $("handover-shift").textContent = r.data.shift ? `${L("handover.shift")}: ${Lc("shift", r.data.shift)}` : "";
  showMissedBanner(Array.isArray(r.data.handover_missed) ? r.data.handover_missed : []);
}
const reloadHandover = debounce(loadHandover, 250);

function showMissedBanner(missed) {
  const banner = $("missed-banner");
  if (!banner) return;
  banner.classList.toggle("hidden", missed.length === 0);
  if (!missed.length) return;
  const m = missed[missed.length - 1];
  $("missed-banner-text").textContent = Lf("banner.missed", { shift: Lc("shift", m.shift), at: fmtTime(m.change_at) });
}

/** The report's sections, in this order; keys the page does not know yet follow with their own names. */
const REPORT_SECTIONS = ["handover_missed", "open_alarms", "unacknowledged_alarms", "supervision_faults", "doors", "meters",
                         "devices_offline", "failed_swipes", "alarms_since", "events_since", "supervision_off"];
/** Events that change what the handover report says (besides alarms and the handover itself). */
const HANDOVER_EVENTS = ["door.forced", "door.held_open", "device.offline", "device.online", "meter.offline",
                         "meter.online", "meter.anomaly", "meter.fault", "meter.fault_cleared", "meter.valve_mismatch",
                         "meter.valve_mismatch_cleared", "access.denied", "door.unlocked", "door.relocked",
                         "shift.handover_missed", "shift.handover_missed_cleared"];

function renderReport(rep) {
  const box = el("div", { class: "report" });
  if (!rep || typeof rep !== "object") return box;
  const last = rep.last_handover;
  if (last && typeof last === "object") {
    box.append(el("p", { class: "hint", id: "handover-last" },
      `${L("handover.last")}: ${fmtTime(last.ts)} ${last.from || ""} → ${last.to || ""}${last.notes ? " · " + last.notes : ""}`));
  }
  if (rep.covers_from && rep.covers_from !== rep.since) {   // no handover recorded, or its event pruned: the last 24 h
    box.append(el("p", { class: "hint", id: "handover-covers" }, Lf("handover.covers_from", { at: fmtTime(rep.covers_from) })));
  }
  const keys = REPORT_SECTIONS.concat(Object.keys(rep).filter((k) => !REPORT_SECTIONS.includes(k) && Array.isArray(rep[k])));
  for (const key of keys) {
    const value = rep[key];
    if (!Array.isArray(value)) continue;
    const more = rep[`${key}_truncated`] === true ? "+" : "";   // only the newest were sent
    const count = key === "failed_swipes" && typeof rep.failed_swipes_total === "number" ? rep.failed_swipes_total : value.length;
    const section = el("div", { class: "report-section" + (value.length ? " has-items" : ""), dataset: { section: key } },
      el("h3", {}, `${Lc("handover", key)} (${count}${more})`));
    if (value.length) {
      // event lists are oldest first: show the newest 50 of them; other lists their first 50
      const shown = isEventList(value) ? value.slice(-50) : value.slice(0, 50);
      section.append(el("ul", { class: "report-list" }, shown.map((item) =>
        el("li", isEvent(item) ? { dataset: { type: item.type } } : {}, reportItem(key, item)))));
    }
    box.append(section);
  }
  return box;
}

/** A logged event in the report ({seq, ts, type, door|meter|device|alarm, reason, ...}), e.g. events_since. */
const isEvent = (o) => typeof o === "object" && o !== null && typeof o.type === "string" && typeof o.ts === "string";
const isEventList = (list) => list.length > 0 && list.every(isEvent);

function reportItem(key, o) {
  if (isEvent(o)) return summarizeEvent(o);
  if (typeof o !== "object" || o === null) return String(o);
  if (key === "failed_swipes") return [doorName(o.door), Lc("reason", o.reason), `×${o.count}`].join(" · ");
  if (key === "handover_missed") return Lf("handover.missed.item", { shift: Lc("shift", o.shift), at: fmtTime(o.change_at) });
  if (key === "supervision_faults") {
    return [`#${o.alarm}`, o.receiver, o.account, alarmText({ code: "silent", text: o.text }),
            o.since ? `${L("since")} ${fmtTime(o.since)}` : "", o.acknowledged ? L("alarms.acked") : L("alarms.new")]
      .filter(Boolean).join(" · ");
  }
  if (key === "meters") return meterTrouble(o);
  if (o.raised_at !== undefined && o.kind) {  // an alarm
    const a = normAlarm(o);
    return [L(`kind.${a.kind}`), alarmWhere(a), alarmText(a), `#${a.id}`, Lc("astate", a.state),
            a.acked && a.by ? a.by : ""].filter(Boolean).join(" · ");
  }
  return summarize(o);
}

function meterTrouble(m) {
  const parts = [m.id, m.unit];
  if (m.online === false) parts.push(L("devices.offline"));
  if (m.state === "error") parts.push(L("devices.error"));
  for (const a of m.anomalies || []) parts.push(Lc("anomaly", a.kind || a));
  for (const f of m.faults || []) parts.push(Lc("fault", f.kind || f));
  if (m.valve_mismatch) parts.push(Lf("meters.mismatch", { read: Lc("valve", m.valve_read), cmd: Lc("valve", m.valve) }));
  return parts.filter(Boolean).join(" · ");
}

/** One line per report item, labelled: "Building 3 main gate · Unlocked · Released by fire alarm #1". */
function summarize(o) {
  const parts = [];
  if (o.name || o.id) parts.push(o.name || o.id);
  if (o.kind) parts.push(Lc("kind", o.kind));
  if (o.building) parts.push(`${L("alarms.building")} ${o.building}`);
  if (o.state) parts.push(hasLabel(`door.${o.state}`) ? L(`door.${o.state}`) : Lc("astate", o.state));
  for (const h of o.holds || []) parts.push(holdLine(h).textContent);
  if (o.reason) parts.push(whyText(o.reason_code, o.reason_args, o.reason));
  return [...new Set(parts)].join(" · ");
}

function initHandover() {
  const form = $("handover-form");
  if (!form) return;
  if (!CFG.can.handover) { form.classList.add("hidden"); return; }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { from: $("handover-from").value.trim(), to: $("handover-to").value.trim(), notes: $("handover-notes").value };
    const r = await api("POST", "/handover", body);
    if (!r.ok) { toast(errText(r), true); return; }
    toast(L("handover.done"));
    $("handover-notes").value = "";
    loadHandover();
  });
}

/* ---------------------------------------------------------------- latest events */
/** Frequent, and not news for a person: left out of the list (the meters view shows readings). */
const QUIET_EVENTS = new Set(["meter.reading", "gateway.test"]);

function activityItem(ev) {
  return el("li", { dataset: { type: ev.type, seq: String(ev.seq || "") } }, summarizeEvent(ev));
}

function addActivity(ev) {
  const list = $("activity");
  if (!list || QUIET_EVENTS.has(ev.type)) return;
  if (ev.seq && list.querySelector(`li[data-seq="${ev.seq}"]`)) return;
  list.prepend(activityItem(ev));
  while (list.childElementCount > 40) list.lastElementChild.remove();
  $("activity-empty").classList.add("hidden");
}

/** After a (re)load, the newest events this role may see, so the list is never empty after a reload. */
async function loadActivity() {
  const list = $("activity");
  if (!list) return;
  const r = await api("GET", "/console/events?limit=40");
  if (!r.ok) return;
  const items = (r.data.items || []).filter((ev) => !QUIET_EVENTS.has(ev.type));
  // keep what the stream already brought (newer than the snapshot), then the snapshot, newest first
  const top = items.length ? Number(items[0].seq) : 0;
  const live = [...list.children].filter((li) => Number(li.dataset.seq) > top);
  list.replaceChildren(...live, ...items.map(activityItem));
  while (list.childElementCount > 40) list.lastElementChild.remove();
  $("activity-empty").classList.toggle("hidden", list.childElementCount > 0);
}

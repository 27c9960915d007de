/* The Meters view: meters by building with their faults (no hot water), valve state and read-back
 * (a mismatch says what the valve reads and what it was told), valve commands for technicians
 * (restrict only where the meter's valve can), and a meter's recent consumption as a chart. Needs console.js. */
"use strict";

async function loadMeters() {
  const box = $("meter-buildings");
  if (!box || !$("view-meters").classList.contains("active")) return;
  const r = await api("GET", "/meters");
  if (routeMissing(r)) { $("meters-na").classList.remove("hidden"); return; }
  if (!r.ok) return;
  $("meters-na").classList.add("hidden");
  const items = Array.isArray(r.data) ? r.data : (r.data.items || r.data.meters || []);
  const byBuilding = new Map();
  for (const m of items) {
    const b = m.building || String(m.unit || "").split("-")[0] || "?";
    if (!byBuilding.has(b)) byBuilding.set(b, []);
    byBuilding.get(b).push(m);
  }
  const heads = ["meters.id", "meters.unit", "meters.total", "meters.read_at", "meters.state", "meters.valve", "meters.anomaly"];
  if (CFG.can.valve) heads.push("meters.actions");
  const sections = [...byBuilding.entries()].sort((a, b) => a[0].localeCompare(b[0], undefined, { numeric: true }))
    .map(([b, ms]) => el("section", { class: "building" }, el("h3", {}, `${L("meters.building")} ${b}`),
      el("div", { class: "table-wrap" }, el("table", { class: "meters" + (CFG.can.valve ? " with-actions" : "") },
        el("thead", {}, el("tr", {}, heads.map((k) => el("th", {}, L(k))))),
        el("tbody", {}, ms.map(meterRow))))));
  box.replaceChildren(...(sections.length ? sections : [el("p", { class: "empty" }, L("none"))]));
}
const reloadMeters = throttle(loadMeters, 2000);
const reloadChart = throttle(() => { if (state.meterShown) showChart(state.meterShown); }, 5000);

function meterValues(m) {
  return m.values || (m.last && m.last.values) || (m.last_reading && m.last_reading.values) || {};
}

function valveCell(m, valve) {
  if (!valve && !m.valve_read) return el("td", {}, "");
  const shown = valve || m.valve_read;
  const cell = el("td", { class: "valve" + (m.valve_mismatch ? " bad" : ""), dataset: { valve: shown } }, Lc("valve", shown));
  if (m.valve_mismatch) {
    cell.append(el("div", { class: "mismatch" },
      Lf("meters.mismatch", { read: Lc("valve", m.valve_read || "unknown"), cmd: Lc("valve", valve || "unknown") }),
      ` · ${L("since")} ${fmtTime(m.valve_mismatch)}`));
  }
  return cell;
}

function troubleCell(m) {
  const anomalies = m.anomalies || (m.anomaly ? [m.anomaly] : []);
  const faults = Array.isArray(m.faults) ? m.faults : [];
  const parts = [
    ...faults.map((f) => el("div", { class: "fault", dataset: { fault: f.kind || f } },
      Lc("fault", f.kind || f), f.since ? ` · ${L("since")} ${fmtTime(f.since)}` : "")),
    ...anomalies.map((a) => el("div", { class: "anomaly" }, Lc("anomaly", typeof a === "object" ? a.kind : a))),
  ];
  return el("td", { class: faults.length ? "bad" : anomalies.length ? "warn" : "" }, parts);
}

/** Open / Restrict / Close, as the meter's valve allows (restrict only where its profile has it). */
function valveButtons(m, valve) {
  const td = el("td", { class: "actions" });
  if (!m.has_valve) return td;
  const states = Array.isArray(m.valve_states) && m.valve_states.length ? m.valve_states : ["open", "closed"];
  const actions = [["open", "open"], ["restrict", "restricted"], ["close", "closed"]].filter(([, s]) => states.includes(s));
  for (const [action, target] of actions) {
    td.append(el("button", { type: "button", class: `small valve-${action}` + (action === "close" ? " danger" : ""),
                             dataset: { meter: m.id, action }, disabled: valve === target && !m.valve_mismatch,
                             onclick: (e) => { e.stopPropagation(); setValve(m, action); } }, L(`valve.do.${action}`)));
  }
  return td;
}

function meterRow(m) {
  const v = meterValues(m);
  const readAt = m.read_at || (m.last && m.last.read_at) || (m.last_reading && m.last_reading.read_at);
  const online = m.online === undefined ? (m.state ? m.state === "online" : null) : m.online;
  const valve = m.valve && typeof m.valve === "object" ? m.valve.state : (m.valve_state || m.valve);
  const stateText = m.state === "error" ? L("devices.error")
    : online === false ? L("devices.offline") : online ? L("devices.online") : L("devices.pending");
  const row = el("tr", { class: "meter-row" + (m.faults && m.faults.length ? " faulty" : ""),
                         dataset: { meter: m.id }, onclick: () => showChart(m.id), tabindex: 0 },
    el("td", { class: "mono" }, m.id), el("td", {}, m.unit || ""),
    el("td", { class: "num" }, v.total_m3 !== undefined && v.total_m3 !== null ? Number(v.total_m3).toFixed(3) : "–"),
    el("td", {}, fmtTime(readAt)),
    el("td", { class: online === false || m.state === "error" ? "bad" : online ? "ok" : "" }, stateText),
    valveCell(m, valve), troubleCell(m));
  if (CFG.can.valve) row.append(valveButtons(m, valve));
  return row;
}

async function setValve(m, action) {
  const ok = await confirmDialog(Lf("valve.confirm", { meter: `${m.id} (${m.unit || ""})`, action: L(`valve.do.${action}`) }));
  if (!ok) return;
  const r = await api("POST", `/meters/${encodeURIComponent(m.id)}/valve`, { action });
  if (!r.ok) { toast(errText(r), true); return; }
  toast(`${L("valve.done")}: ${m.id} · ${Lc("valve", r.data.state)}`);
  loadMeters();
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

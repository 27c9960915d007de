/* Start-up and the live stream: every event this role may see arrives over SSE and is routed to the
 * views it changes. Loaded last (needs console.js, duty.js, tech.js, meters.js). */
"use strict";

function onEvent(ev) {
  const t = ev.type;
  addActivity(ev);
  if (t.startsWith("alarm.")) onAlarmEvent(ev);
  if (t.startsWith("door.") || t.startsWith("device.") || t.startsWith("access.")) reloadDoors();
  if (t.startsWith("device.") || t === "gateway.outbox_near_full") reloadHealth();
  if (t.startsWith("shift.") || t.startsWith("alarm.") || HANDOVER_EVENTS.includes(t)) reloadHandover();
  if (t.startsWith("meter.") && $("view-meters") && $("view-meters").classList.contains("active")) {
    reloadMeters();
    if (t === "meter.reading" && ev.data && ev.data.meter === state.meterShown) reloadChart();
  }
  if (t === "access.granted" || t === "access.denied" || t === "card.verified") onSwipeEvent(ev);
  if ((t === "card.issued" || t === "access.denied") && state.enrolment) pollEnrolment();
  if (t.startsWith("card.") && state.unitShown && ev.data && ev.data.unit === state.unitShown) showCards(state.unitShown);
}

function reloadAll() {
  loadAlarms(); loadDoors(); loadHealth(); loadHandover(); loadMeters(); loadActivity();
  if (state.verifyCard) showVerification(state.verifyCard);
}

function initStream() {
  const live = $("live");
  const es = new EventSource(API + "/stream");
  let opened = false;
  const show = (on) => {
    live.className = on ? "live on" : "live off";
    live.title = L(on ? "live.on" : "live.off");
    live.querySelector(".live-text").textContent = L(on ? "live.on" : "live.off");
  };
  es.addEventListener("open", () => {
    show(true);
    if (opened) reloadAll();  // a reconnect: whatever happened while we were away
    opened = true;
  });
  es.addEventListener("error", () => show(false));
  es.addEventListener("ev", (msg) => {
    let ev;
    try { ev = JSON.parse(msg.data); } catch (e) { return; }
    onEvent(ev);
  });
  es.addEventListener("resync", reloadAll);
}

document.addEventListener("DOMContentLoaded", () => {
  initTabs();
  initSound();
  initBanners();
  initHandover();
  initEnrolment();
  initCards();
  initStream();  // first, so no event committed while the lists load is missed
  reloadAll();
  setInterval(loadHealth, 3000);
  setInterval(loadDoors, 10000);
});

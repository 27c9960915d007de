/* What the console and the commissioning page share (a classic script, loaded before either page's own):
 * the page's config (the JSON block the server renders with the page), its labels, element building, and
 * the JSON API call with the session's CSRF header, an error's text and the toast. Why one file: both pages build their DOM the same way
 * and must treat 401, network errors and CSRF the same; two copies drift. */
"use strict";

const $ = (id) => document.getElementById(id);
/** The page config: the server renders it in <script type="application/json" data-page-config>. */
const CFG = JSON.parse(document.querySelector("script[data-page-config]").textContent);

/* ---------------------------------------------------------------- labels */
const hasLabel = (key) => Object.prototype.hasOwnProperty.call(CFG.labels, key);
/** A label; an unknown key shows itself (visible, and the browser tests look for such gaps). */
const L = (key) => (hasLabel(key) ? CFG.labels[key] : key);
/** A label with {slots} filled. */
function Lf(key, vars) {
  return L(key).replace(/\{(\w+)\}/g, (m, k) => (vars && vars[k] !== undefined && vars[k] !== null ? String(vars[k]) : m));
}

/* ---------------------------------------------------------------- DOM */
/** An element with attributes (on* = listeners, class, dataset; false/null/undefined left out) and children. */
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

/* ---------------------------------------------------------------- API */
/** A JSON call under ``base``: {ok, status, data}; status 0 when the network failed; a 401 goes to sign-in. */
async function apiCall(base, method, path, body) {
  const headers = { "Accept": "application/json" };
  if (method !== "GET") {
    headers["X-CSRF-Token"] = CFG.csrf;
    headers["Content-Type"] = "application/json";
  }
  let resp;
  try {
    resp = await fetch(base + path, { method, headers, credentials: "same-origin",
                                       body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    return { ok: false, status: 0, data: { error: { code: "network", message: String(e) } } };
  }
  if (resp.status === 401) { window.location.href = "/login"; }
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  return { ok: resp.ok, status: resp.status, data };
}

/** An error's text for a toast: network, forbidden, then ``own(error)`` (the page's words for it, or ""),
 *  else the generic text with the server's message. */
function errorText(r, own) {
  if (r.status === 0) return L("err.network");
  if (r.status === 403) return L("err.forbidden");
  const e = r.data && r.data.error;
  return (own && own(e)) || L("err.generic") + (e ? `: ${e.message || e.code}` : ` (${r.status})`);
}

/* ---------------------------------------------------------------- toast */
let toastTimer = null;
function toast(text, bad) {
  const t = $("toast");
  t.textContent = text;
  t.className = "toast show" + (bad ? " bad" : "");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.className = "toast"; }, 4000);
}

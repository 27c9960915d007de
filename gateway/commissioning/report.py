"""The acceptance report: one HTML page made for print (A4, ``@media print``), in Chinese or English.

Self-contained on purpose (styles inline, no script, no image): the finish stores it as it was
printed, so the page a site manager files as PDF (the browser's Print → Save as PDF) is the same
the gateway still serves years later. It lists the result, who walked, every device with each
step's status, when and what the gateway saw, and the failures and not-applicable steps with the
reasons given.
"""

from __future__ import annotations

import html
from datetime import datetime, tzinfo
from typing import Any

from gateway.api.i18n import t

CSS = """
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { font: 11pt/1.4 "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", system-ui, sans-serif;
       color: #111; margin: 0 auto; max-width: 60rem; padding: 1rem; }
h1 { font-size: 18pt; margin: 0 0 .3rem; } h2 { font-size: 13pt; margin: 1.2rem 0 .4rem; border-bottom: 1px solid #999; }
h3 { font-size: 11.5pt; margin: .8rem 0 .3rem; }
table { border-collapse: collapse; width: 100%; margin: .2rem 0 .6rem; }
th, td { border: 1px solid #bbb; padding: .2rem .35rem; text-align: left; vertical-align: top; font-size: 9.5pt; }
th { background: #eee; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: .4rem 0; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; }
.result { font-size: 14pt; font-weight: 700; padding: .2rem .6rem; border: 2px solid; display: inline-block; }
.result.accepted, .s-done { color: #0a5a1e; } .result.failed, .s-failed { color: #9b1010; }
.result.incomplete, .s-pending { color: #7a4b00; } .s-na { color: #555; }
.draft { border: 2px dashed #9b1010; color: #9b1010; padding: .4rem; font-weight: 700; }
.seen { color: #333; } .small { font-size: 8.5pt; color: #555; }
.signs { display: grid; grid-template-columns: 1fr 1fr; gap: 2rem; margin-top: 2rem; }
.signs div { border-top: 1px solid #111; padding-top: .3rem; min-height: 3rem; }
tr, .signs { break-inside: avoid; } thead { display: table-header-group; }
@media print { body { padding: 0; max-width: none; } .noprint { display: none; } a { color: inherit; text-decoration: none; } }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def local(ts: Any, tz: tzinfo | None) -> str:
    """An event time (RFC 3339 UTC) as the site reads it: local date and time to the second."""
    if not ts:
        return ""
    try:
        when = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return str(ts)
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if tz is not None else when.strftime("%Y-%m-%d %H:%M:%S")


def _f(lang: str, key: str, **values: Any) -> str:
    text = t(lang, key)
    for k, v in values.items():
        text = text.replace("{" + k + "}", str(v))
    return text


def seen_text(lang: str, step: dict[str, Any], tz: tzinfo | None = None) -> str:
    """What the gateway saw of a step, in words: each part with its time (and the card or alarm it was)."""
    parts = step.get("seen", {}).get("parts", {})
    out = []
    for part, ev in parts.items():
        words = t(lang, f"comm.part.{part}")
        if ev.get("card"):
            words += " (" + _f(lang, "comm.report.card", card=ev["card"]) + ")"
        if ev.get("alarm"):
            words += " (" + _f(lang, "comm.report.alarm", alarm=ev["alarm"]) + ")"
        if ev.get("kind") and part == "anomaly":
            words += f" ({ev['kind']})"
        values = ev.get("values")
        if isinstance(values, dict) and values:
            words += " " + ", ".join(f"{k} {v}" for k, v in values.items())
        if ev.get("state"):
            words += f" ({ev['state']})"
        out.append(f"{words} · {local(ev.get('at'), tz)}")
    marked = step.get("seen", {}).get("marked")
    if marked:
        out.append(_f(lang, "comm.was_marked", status=t(lang, f"comm.status.{marked['status']}"),
                      reason=marked.get("reason", "")))
    return "; ".join(out)


def _building_name(lang: str, b: str) -> str:
    return _f(lang, "comm.building", b=b) if b else t(lang, "comm.building.none")


def _device_rows(lang: str, building: dict[str, Any], tz: tzinfo | None) -> str:
    rows = []
    for d in building["devices"]:
        first = True
        span = len(d["steps"])
        for s in d["steps"]:
            who = t(lang, "comm.by.gateway") if s["by"] == "gateway" else (s["by"] or "")
            cell = (f'<td rowspan="{span}"><strong>{_e(d["name"])}</strong><br><span class="small">'
                    f'{_e(t(lang, "comm.kind." + d["kind"]))} · {_e(d["device"])}</span></td>') if first else ""
            first = False
            rows.append(f'<tr>{cell}<td>{_e(t(lang, "comm.step." + s["step"]))}</td>'
                        f'<td class="s-{_e(s["status"])}">{_e(t(lang, "comm.status." + s["status"]))}</td>'
                        f'<td>{_e(local(s["at"], tz))}</td><td>{_e(who)}</td>'
                        f'<td class="seen">{_e(seen_text(lang, s, tz))}{("<br>" + _e(s["reason"])) if s["reason"] else ""}'
                        f'</td></tr>')
    head = "".join(f"<th>{_e(t(lang, k))}</th>" for k in ("comm.report.device", "comm.report.step",
                   "comm.report.status", "comm.at", "comm.by", "comm.seen"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _marked_table(lang: str, view: dict[str, Any], status: str, tz: tzinfo | None) -> str:
    rows = [(d, s) for b in view["buildings"] for d in b["devices"] for s in d["steps"] if s["status"] == status]
    if not rows:
        return ""
    head = "".join(f"<th>{_e(t(lang, k))}</th>" for k in ("comm.report.device", "comm.report.step", "comm.reason",
                                                          "comm.by", "comm.at"))
    body = "".join(f'<tr><td>{_e(d["name"])} <span class="small">{_e(d["device"])}</span></td>'
                   f'<td>{_e(t(lang, "comm.step." + s["step"]))}</td><td>{_e(s["reason"])}</td>'
                   f'<td>{_e(s["by"])}</td><td>{_e(local(s["at"], tz))}</td></tr>' for d, s in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _people(view: dict[str, Any]) -> list[str]:
    people = [view["started_by"]]
    for b in view["buildings"]:
        for d in b["devices"]:
            people += [s["by"] for s in d["steps"] if s["by"] and s["by"] != "gateway"]
    if view.get("finished_by"):
        people.append(view["finished_by"])
    return list(dict.fromkeys(people))


def _scope_text(lang: str, scope: dict[str, Any]) -> str:
    kind = scope.get("kind", "site")
    extra = ", ".join(scope.get("buildings") or scope.get("devices") or [])
    return t(lang, f"comm.scope.{kind}") + (f": {extra}" if extra else "")


def render_report(view: dict[str, Any], lang: str, tz: tzinfo | None = None) -> str:
    """The report of a run ``view`` (``Walk.view``) in ``lang``, times in the site's zone ``tz``."""
    summary = view["summary"]
    result = summary["result"]
    counts = _f(lang, "comm.counts", **summary["steps"])
    draft = "" if view["state"] == "finished" else f'<p class="draft">{_e(t(lang, "comm.report.draft"))}</p>'
    meta = [("comm.report.site", f'{view["site"]} / {view["gateway"]}'),
            ("comm.report.scope", _scope_text(lang, view["scope"])),
            ("comm.report.started", f'{local(view["started_at"], tz)} · {view["started_by"]}'),
            ("comm.report.finished", f'{local(view.get("finished_at"), tz) or "—"} · {view.get("finished_by") or ""}'),
            ("comm.report.people", ", ".join(_people(view)))]
    if view.get("note") or view.get("finish_note"):
        meta.append(("comm.report.note", " / ".join(n for n in (view.get("note"), view.get("finish_note")) if n)))
    meta_html = "".join(f"<dt>{_e(t(lang, k))}</dt><dd>{_e(v)}</dd>" for k, v in meta)
    per_building = "".join(
        f'<tr><td>{_e(_building_name(lang, b))}</td><td>{_e(_f(lang, "comm.counts", **c))}</td></tr>'
        for b, c in summary["buildings"].items())
    failures = _marked_table(lang, view, "failed", tz) or f'<p>{_e(t(lang, "comm.report.failures.none"))}</p>'
    na = _marked_table(lang, view, "na", tz)
    devices = "".join(f'<h3>{_e(_building_name(lang, b["building"]))}</h3>{_device_rows(lang, b, tz)}'
                      for b in view["buildings"])
    title = f'{t(lang, "comm.report.title")} · {view["site"]} · {_f(lang, "comm.run", id=view["id"])}'
    return f"""<!doctype html>
<html lang="{_e(lang)}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{CSS}</style></head>
<body>
<h1>{_e(t(lang, "comm.report.title"))}</h1>
<p class="noprint small">{_e(t(lang, "comm.report.printed"))}</p>
{draft}
<dl class="meta">{meta_html}
<dt>{_e(t(lang, "comm.report.result"))}</dt><dd><span class="result {_e(result)}" id="result">{_e(t(lang, "comm.result." + result))}</span> {_e(counts)}</dd></dl>
<h2>{_e(t(lang, "comm.report.summary"))}</h2>
<table><tbody>{per_building}</tbody></table>
<h2>{_e(t(lang, "comm.report.failures"))}</h2>
{failures}
{f'<h2>{_e(t(lang, "comm.report.na"))}</h2>{na}' if na else ""}
<h2>{_e(t(lang, "comm.report.devices"))}</h2>
{devices}
<div class="signs"><div>{_e(t(lang, "comm.report.sign"))}<br><span class="small">{_e(t(lang, "comm.report.date"))}</span></div>
<div>{_e(t(lang, "comm.report.sign.duty"))}<br><span class="small">{_e(t(lang, "comm.report.date"))}</span></div></div>
</body></html>
"""

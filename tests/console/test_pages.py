"""Console pieces without a daemon: the label catalogue, the renderer, the small parsers (fuzzed)."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.api.auth import Principal, csrf_for
from gateway.api.i18n import CATALOGUE, catalogue, pick_lang, t
from gateway.console import ConsoleComponent, stream
from gateway.console import pages as console
from gateway.console.pages import parse_form, render
from gateway.console.stream import parse_last_event_id, visible

STATIC = console.STATIC
TEMPLATES = console.TEMPLATES


def test_catalogue_complete_in_both_languages() -> None:
    for key, (zh, en) in CATALOGUE.items():
        assert zh.strip() and en.strip(), key
    assert catalogue("zh").keys() == catalogue("en").keys()
    assert t("en", "tab.duty") == "Duty" and t("zh", "tab.duty") == "值班"
    assert t("en", "no.such.key") == "no.such.key"


def test_every_label_used_by_templates_and_js_exists() -> None:
    """Every label key a template or script names is in the catalogue; every event type a script names has its
    ``event.<type>`` label (the page shows events in words)."""
    used: set[str] = set()
    for tpl in TEMPLATES.glob("*.html"):
        used |= {m.group(2) for m in console.PLACEHOLDER.finditer(tpl.read_text()) if "." in m.group(2)}
    literals: set[str] = set()
    for js in STATIC.glob("*.js"):
        literals |= set(re.findall(r'"([a-z_]+(?:\.[a-z_]+)+)"', js.read_text()))
    storage = {"egw.view", "egw.sound"}
    events = {k for k in literals if f"event.{k}" in CATALOGUE}
    missing = sorted(k for k in used | (literals - storage - events) if k not in CATALOGUE)
    assert not missing, missing
    assert {"alarms.note.required", "doors.relock", "banner.uplink.detail", "verify.denied"} <= literals


def test_every_script_is_served_and_loaded() -> None:
    """The scripts the page loads are the ones the asset whitelist serves, in the order they depend on."""
    shell = (TEMPLATES / "console.html").read_text()
    loaded = re.findall(r'<script src="/static/([a-z]+\.js)"', shell)
    assert loaded == ["dom.js", "console.js", "duty.js", "tech.js", "meters.js", "start.js"]
    assert set(loaded) == {n for n in console.STATIC_FILES if n.endswith(".js")}
    assert all((STATIC / n).exists() for n in console.STATIC_FILES)
    # the commissioning page shares dom.js (config, labels, el, apiCall) and loads it before its own script
    walk = (TEMPLATES / "commissioning.html").read_text()
    assert re.findall(r'<script src="(/[a-z/]+\.js)"', walk) == ["/static/dom.js", "/commissioning/static/commissioning.js"]


def test_pick_lang() -> None:
    assert pick_lang("en", "zh-CN") == "en"
    assert pick_lang(None, "en-US,en;q=0.9") == "en"
    assert pick_lang(None, "zh-CN") == "zh"
    assert pick_lang("fr", None) == "zh"


def test_render_escapes_values_and_labels() -> None:
    out = render("<p>{{ x }}</p><div>{{! raw }}</div>{{ tab.duty }}", {"x": "<script>&", "raw": "<b>ok</b>"}, "en")
    assert out == "<p>&lt;script&gt;&amp;</p><div><b>ok</b></div>Duty"


def test_stream_visibility_by_role() -> None:
    assert visible("operator", "alarm.raised") and visible("operator", "door.forced")
    assert not visible("operator", "card.issued") and visible("operator", "card.revoked")
    assert visible("technician", "card.verified") and not visible("technician", "alarm.raised")
    assert visible("central", "meter.reading") and not visible("central", "door.opened")
    assert visible("admin", "gateway.test") and not visible("nobody", "alarm.raised")


def test_csrf_value_is_per_token_and_does_not_reveal_it() -> None:
    a, b = csrf_for("egw_token_a"), csrf_for("egw_token_b")
    assert a != b and a == csrf_for("egw_token_a") and "token_a" not in a and len(a) == 64


def test_console_page_for_each_role_has_only_its_views() -> None:
    comp = ConsoleComponent()
    op = comp.render_console(Principal("op", "operator"), "en", "c" * 64)
    assert 'id="view-duty"' in op and 'id="alarm-banner"' in op and 'id="uplink-banner"' in op
    # an operator's Cards view is the register (to revoke a lost card at night), not the enrolment
    assert 'id="view-cards"' in op and 'id="cards-panel"' in op and 'id="enrol-form"' not in op
    assert 'id="view-tech"' not in op
    tech = comp.render_console(Principal("t", "technician"), "zh", "c" * 64)
    assert 'id="view-tech"' in tech and 'id="door-board"' not in tech and "刷卡登记" in tech
    assert 'id="alarm-banner"' not in tech and 'id="enrol-form"' in tech
    # the JSON config block cannot be closed early by data
    assert "</script" not in op.split('type="application/json">', 1)[1].split("</script>", 1)[0]


def test_page_config_says_what_each_role_may_do() -> None:
    comp = ConsoleComponent()
    can = {role: comp.pages.page_config(Principal("x", role), "en", "c", ())["can"]
           for role in ("operator", "technician", "central")}
    assert can["operator"]["relock"] and can["operator"]["revoke"] and not can["operator"]["valve"]
    assert can["technician"]["valve"] and can["technician"]["edit"] and not can["technician"]["relock"]
    assert not any(can["central"].values())
    zh = comp.pages.page_config(Principal("x", "operator"), "zh", "c", ())
    assert zh["alarm_texts"]["110"] == "火灾报警"
    assert comp.pages.page_config(Principal("x", "operator"), "en", "c", ())["alarm_texts"] == {}


def test_parse_form() -> None:
    assert parse_form(b"token=abc%2B1&x=2&token=second") == {"token": "abc+1", "x": "2"}
    assert parse_form(b"\xff\xfe") == {}
    assert parse_form(b"a=" + b"x" * 10_000) == {}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_parse_form_never_raises(body: bytes) -> None:
    out = parse_form(body)
    assert isinstance(out, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in out.items())


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=40)))
def test_parse_last_event_id_never_raises(value: str | None) -> None:
    out = parse_last_event_id(value)
    assert out is None or (isinstance(out, int) and out >= 0)


def test_parse_last_event_id() -> None:
    assert parse_last_event_id("42") == 42
    assert parse_last_event_id(" 7 ") == 7
    for bad in ("", "-1", "1e3", "٣", "9" * 40, "abc"):
        assert parse_last_event_id(bad) is None


def test_stream_in_process_batches_overflows_and_ends_on_stop(tmp_path: Path) -> None:
    """The stream generator over a real store: live frames, resync after overflow, end on stop."""
    import asyncio

    from conftest import make_config

    from gateway.daemon import build_context, stop_context

    async def main() -> None:
        comp = ConsoleComponent()
        ctx = await build_context(make_config(tmp_path), components=[comp])
        try:
            gen = comp.stream("operator", None)
            assert (await gen.__anext__()).startswith("retry:")
            nxt = asyncio.ensure_future(gen.__anext__())
            await asyncio.sleep(0.05)
            await ctx.events.record("alarm.raised", {"alarm": 1, "kind": "fire"})
            await ctx.events.record("card.issued", {"card": "26:00"})  # not for operators
            await ctx.events.record("door.forced", {"door": "d1"})
            chunk = await asyncio.wait_for(nxt, 5)
            chunk += await asyncio.wait_for(gen.__anext__(), 5) if chunk.count("event: ev") < 2 else ""
            assert "alarm.raised" in chunk and "door.forced" in chunk and "card.issued" not in chunk
            # a page that stops reading: its queue is bounded and it is told to resync
            await ctx.events.transact(lambda conn, emit: [emit("door.opened", {"door": "d1", "n": i})
                                                          for i in range(stream.QUEUE_SIZE + 10)])
            assert "event: resync" in await asyncio.wait_for(gen.__anext__(), 5)
            assert comp.clients == 1
            nxt = asyncio.ensure_future(gen.__anext__())
            await asyncio.sleep(0.05)
            await comp.stop()
            try:
                await asyncio.wait_for(nxt, 5)
                await asyncio.wait_for(gen.__anext__(), 5)
            except StopAsyncIteration:
                pass
            assert comp.clients == 0
        finally:
            await stop_context(ctx)

    asyncio.run(main())


def test_labels_for_every_state_and_kind_the_page_draws() -> None:
    """Labels built from data (``door.<state>``, ``kind.<kind>``...) exist for every value the contract names."""
    needed = [f"door.{s}" for s in ("open", "closed", "forced", "held_open", "offline", "unlocked", "unknown")]
    needed += [f"kind.{k}" for k in ("fire", "smoke", "burglary", "panic", "fault", "supervisory", "test", "other",
                                     "reader", "bus", "receiver")]
    needed += [f"holder.{k}" for k in ("resident", "family", "tenant", "worker", "staff")]
    needed += [f"anomaly.{k}" for k in ("reverse", "leak", "spike", "stuck")]
    needed += [f"devices.{k}" for k in ("online", "offline", "pending")]
    needed += [f"valve.{k}" for k in ("open", "closed", "restricted", "unknown")] + ["fault.no_hot_water"]
    needed += [f"valve.do.{k}" for k in ("open", "restrict", "close")]
    needed += [f"role.{r}" for r in ("operator", "technician", "central", "admin")]
    # the handover report: a heading per section (the new ones too), a label per event type listed in events_since
    from gateway.alarms import HANDOVER_EVENTS

    needed += [f"handover.{k}" for k in ("open_alarms", "unacknowledged_alarms", "doors", "meters",
                                         "devices_offline", "alarms_since", "events_since", "supervision_faults",
                                         "supervision_off", "failed_swipes", "handover_missed")]
    needed += [f"event.{t}" for t in HANDOVER_EVENTS]
    assert [k for k in needed if k not in CATALOGUE] == []
    # and the page reloads the report when one of them arrives
    m = re.search(r"const HANDOVER_EVENTS = \[([^\]]*)\]", (STATIC / "duty.js").read_text())
    assert m is not None
    reloads = set(re.findall(r'"([a-z_.]+)"', m.group(1)))
    assert [t for t in HANDOVER_EVENTS if t not in reloads and not t.startswith("alarm.")] == []

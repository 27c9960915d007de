"""A year on site: the gateway at a busy site's retained size. Writes bench/results/year.json. Not part of `make test`.

Builds the retained data through the gateway's own code, in process (the same store, registers, event log,
audit and `cards.snapshot` path the daemon uses; history is written with the clock set back, a day at a time):
YEAR_METERS meters read every 15 minutes for YEAR_DAYS days, YEAR_EVENTS events a day (delivered, as central
had them), YEAR_CARDS cards, YEAR_BILLING_YEARS years of quarter-end billing readings, YEAR_AUDIT audit rows a
day. Then, in the same run:

* the access decision (card -> decision committed -> relay command, in process) p99 with nothing in the
  background, and while the hourly prunes run (a day of events and readings falls out), while the nightly
  backup runs (the daemon's Backups.take in a thread), while a `cards.snapshot` of YEAR_CARDS is applied:
  each as a ratio to the quiet p99 (aim <= 1.5x);
* the database: size, bytes per stored reading and event (dbstat), and its size and the backup's duration
  and size at 30 days and at the end (growth linear or worse);
* the daemon on that database: start to ready (health 200), RSS, the console's duty page data (what the page
  asks for on open), one meter's history, latest events, `GET /events?after=` and `GET /readings?after=`
  paging (rows/s), one meter's whole history through `/readings?meter=&from=&to=`, `GET /billing?quarter=`.

Defaults are the issue's site (1,000 meters, 90 days, 20,000 events a day, 100,000 cards, 5 years of billing):
about 8.6 M readings and 1.8 M events. Every knob is an env var so a test runs it tiny.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_access import RelayRecorder, snapshot_cards  # noqa: E402
from benchkit import summary, write_results  # noqa: E402
from year_pages import query_plans  # noqa: E402

from conftest import GatewayProc, Mosquitto, make_config, wait_until  # noqa: E402

from gateway.access import AccessComponent, SnapshotArgs  # noqa: E402
from gateway.daemon import Backups, build_context, stop_context  # noqa: E402
from gateway.events import format_ts  # noqa: E402
from gateway.metering import MeteringComponent, register  # noqa: E402


def knob(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


DAYS = knob("YEAR_DAYS", 90)
METERS = knob("YEAR_METERS", 1000)
EVENTS = knob("YEAR_EVENTS", 20_000)
CARDS = knob("YEAR_CARDS", 100_000)
BILLING_YEARS = knob("YEAR_BILLING_YEARS", 5)
AUDIT = knob("YEAR_AUDIT", 200)
SWIPES = knob("YEAR_SWIPES", 1000)
HTTP_N = knob("YEAR_HTTP_N", 30)
PAGES = knob("YEAR_PAGES", 50)
DAEMON = knob("YEAR_DAEMON", 1)  # 0: only the in-process part (the decisions while the big jobs run)
DOORS = 20
READS_PER_DAY = 96  # every 15 minutes
BUSES = 10


def site_toml(days: int, meters: int) -> str:
    out = [f"[outbox]\nretention_days = {days}\nmax_events = 5000000\n[metering]\nkeep_days = {days}\n"]
    for i in range(DOORS):
        out.append(f'[[readers]]\nid = "r{i}"\ndriver = "osdp"\nport = "socket://127.0.0.1:1"\naddress = {i}\n'
                   f'[[doors]]\nid = "d{i}"\nbuilding = "{i + 1}"\nreader = "r{i}"\n')
    for b in range(BUSES):  # nothing listens: the meters stay offline, their history is what is measured
        out.append(f'[[buses]]\nid = "bus{b}"\ntransport = "tcp"\nport = "127.0.0.1:1"\n')
    for m in range(meters):
        out.append(f'[[meters]]\nid = "m{m}"\nbus = "bus{m % BUSES}"\ndevice_id = {m // BUSES % 247 + 1}\n'
                   f'profile = "generic-hot-water"\nunit = "{m % 20 + 1}-{m % 4 + 1}-{m:04d}"\npoll_s = 900\n')
    return "\n".join(out)


def reading_vals(m: int, k: int) -> str:
    return register.encode_values({"total_m3": round(100 + m % 97 + k * 0.0123, 3), "flow_m3h": round(k % 7 * 0.11, 3),
                                   "temp_c": round(48 + k % 11 * 0.7, 1), "battery_v": 3.6, "status": 0})


def db_bytes(ctx: Any) -> dict[str, int]:
    """Bytes in use by table+indexes (dbstat), and the file as SQLite sees it (page_count * page_size)."""
    rows = ctx.store.query("SELECT d.name, SUM(d.pgsize), m.tbl_name FROM dbstat d JOIN sqlite_schema m "
                           "ON m.name = d.name GROUP BY d.name")
    out: dict[str, int] = {}
    for _name, size, table in rows:
        out[table] = out.get(table, 0) + int(size)
    pages = ctx.store.query_one("PRAGMA page_count")[0] * ctx.store.query_one("PRAGMA page_size")[0]
    return {"file": int(pages), **out}


async def timed_backup(cfg: Any, ctx: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    path = await asyncio.get_running_loop().run_in_executor(None, Backups(cfg, ctx.store).take)
    return {"s": round(time.perf_counter() - t0, 2), "mb": round(path.stat().st_size / 1e6, 1)}


async def build(cfg: Any, ctx: Any, access: AccessComponent, t0: datetime, res: dict[str, Any]) -> None:
    t = time.perf_counter()
    await access.sync.apply_snapshot(1, SnapshotArgs.model_validate({"rev": 1, "cards": snapshot_cards(CARDS)}).cards)
    await build_billing(ctx, t0)
    res["build"] = {"cards_s": round(time.perf_counter() - t, 1)}
    rows = {"readings": 0, "events": 0}
    for day in range(DAYS):
        await build_day(ctx, t0 + timedelta(days=day), day, rows)
        if day + 1 == min(30, DAYS) or day + 1 == DAYS:
            res[f"at_{day + 1}_days"] = {"rows": dict(rows), "bytes": db_bytes(ctx),
                                         "backup": await timed_backup(cfg, ctx)}
            print(f"day {day + 1}: {res[f'at_{day + 1}_days']}", flush=True)
    res["build"]["total_s"] = round(time.perf_counter() - t, 1)


async def build_billing(ctx: Any, end: datetime) -> None:
    """YEAR_BILLING_YEARS years of quarter-end billing readings for every meter (the billing register's SQL)."""
    for q in range(BILLING_YEARS * 4):
        year, quarter = divmod(end.year * 4 + (end.month - 1) // 3 - 1 - q, 4)
        period, read_at = f"{year}Q{quarter + 1}", format_ts(datetime(year, quarter * 3 + 3, 28, tzinfo=UTC))

        def write(conn: Any, period: str = period, read_at: str = read_at) -> None:
            for m in range(METERS):
                register.insert_billing_reading(conn, f"m{m}", period, f"{m % 20 + 1}-{m % 4 + 1}-{m:04d}",
                                                read_at, reading_vals(m, q))
        await ctx.store.write(write)


async def build_day(ctx: Any, day: datetime, d: int, rows: dict[str, int]) -> None:
    """One day of readings (the register's insert), events and audit rows (the event log's emit and the audit's
    insert, with the clock set to their hour) -- then marked delivered as the uplink does."""
    for hour in range(24):
        ctx.clock.set(day + timedelta(hours=hour))

        def readings(conn: Any, hour: int = hour) -> int:
            n = 0
            for slot in range(READS_PER_DAY // 24):
                k = d * READS_PER_DAY + hour * 4 + slot
                read_at = format_ts(day + timedelta(hours=hour, minutes=15 * slot))
                for m in range(METERS):
                    register.insert_reading(conn, f"m{m}", f"{m % 20 + 1}-{m % 4 + 1}-{m:04d}", read_at,
                                            reading_vals(m, k))
                    n += 1
            return n

        def events(conn: Any, emit: Any, hour: int = hour) -> list[int]:
            seqs = []
            for i in range(EVENTS // 24 + (1 if hour < EVENTS % 24 else 0)):
                j = d * EVENTS + hour * 1000 + i
                kind = "access.granted" if i % 10 else "access.denied"
                seqs.append(emit(kind, {"door": f"d{j % DOORS}", "reader": f"r{j % DOORS}", "card": f"H10304:1:{j % CARDS}",
                                        "unit": f"{j % 20 + 1}-{j % 4 + 1}-{j % 1000:04d}", "holder_kind": "resident",
                                        **({"reason": "not_valid_yet"} if kind == "access.denied" else {})}).seq)
            for i in range(AUDIT // 24 + (1 if hour < AUDIT % 24 else 0)):
                seqs.append(ctx.audit.insert(conn, "duty", "operator", "door.unlock", f"d{i % DOORS}", {"why": "visitor"}).seq)
            return seqs

        rows["readings"] += await ctx.store.write(readings)
        seqs = await ctx.events.transact(events)
        rows["events"] += len(seqs)
        await ctx.events.mark_delivered(seqs)


#: every quiet window's latencies (nothing in the background): pooled, the steadier denominator of the ratios
QUIET_ALL: list[float] = []


async def decisions(access: AccessComponent, cards: list[str], recorder: RelayRecorder,
                    background: asyncio.Future[Any] | None, *, quiet: bool = False) -> dict[str, Any]:
    """Granted swipes (card -> decision committed -> relay) every 2 ms: SWIPES of them, or for as long as
    ``background`` runs (bounded by 10 x SWIPES). ``quiet``: a window with nothing in the background (pooled)."""
    lat: list[float] = []
    for i in range(SWIPES * 10):
        if background is None and i >= SWIPES or background is not None and background.done() and i >= 20:
            break
        j = (i * 7919) % len(cards)
        t0 = time.perf_counter()
        reason = await access.card_read(f"r{j % 20}", cards[j])
        if reason is None:
            lat.append(recorder.last_output - t0)
        await asyncio.sleep(0.002)
    if quiet:
        QUIET_ALL.extend(lat)
    return summary(lat) if lat else {"n": 0}


async def in_process(work: Path, res: dict[str, Any]) -> None:
    cfg = make_config(work, site_toml(DAYS, METERS))
    access, metering = AccessComponent(), MeteringComponent()
    access.readers.start = lambda ctx: None  # type: ignore[method-assign]  # no buses: relay captured below
    ctx = await build_context(cfg, components=[access, metering])
    if os.environ.get("YEAR_SWITCH_MS"):  # to measure the daemon's GIL switch interval against another
        sys.setswitchinterval(float(os.environ["YEAR_SWITCH_MS"]) / 1000)
    res["switch_interval_ms"] = sys.getswitchinterval() * 1000
    try:
        t0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=DAYS)
        await build(cfg, ctx, access, t0, res)
        recorder = RelayRecorder()
        for r in cfg.readers:
            access.readers.driver_of[r.id] = recorder
            access.readers.online[r.id] = True
        ctx.clock.set(t0 + timedelta(days=DAYS + 1, minutes=-1))  # a day more: the first day falls out
        cards = [c["card"] for c in snapshot_cards(CARDS)]
        QUIET_ALL.clear()
        dec: dict[str, Any] = {"quiet": await decisions(access, cards, recorder, None, quiet=True)}

        async def prunes() -> dict[str, Any]:
            t = time.perf_counter()
            ev = await ctx.events.prune(cfg.outbox.retention_days)
            rd = await metering.readings.prune()
            return {"events": ev, "readings": rd, "s": round(time.perf_counter() - t, 2)}

        # the register replaced by one where every card changed (a new end date): every swipe still granted
        changed = [{**c, "valid_until": "2031-12-31"} for c in snapshot_cards(CARDS)]
        payload = json.dumps({"id": "snap-2", "args": {"rev": 2, "cards": changed}})
        del changed  # 200,000 live objects of the bench's own in the daemon's heap: every full GC walked them

        async def snapshot() -> dict[str, Any]:
            t = time.perf_counter()
            out = await ctx.commands.handle("cards.snapshot", payload)
            return {"ok": out["ok"], "s": round(time.perf_counter() - t, 2)}

        # a quiet window right before each job too: on a shared box the load moves, the adjacent ratio says more
        for name, job in (("prune", prunes), ("backup", lambda: timed_backup(cfg, ctx)), ("snapshot", snapshot)):
            dec[f"quiet_before_{name}"] = await decisions(access, cards, recorder, None, quiet=True)
            task = asyncio.ensure_future(job())
            dec[name] = await decisions(access, cards, recorder, task)
            dec[name]["job"] = await task
            dec[name]["p99_ratio_to_quiet"] = round(dec[name]["p99_ms"] / dec["quiet"]["p99_ms"], 2)
            dec[name]["p99_ratio_to_quiet_before"] = round(dec[name]["p99_ms"] / dec[f"quiet_before_{name}"]["p99_ms"], 2)
            print(f"decision during {name}: {dec[name]}", flush=True)
        # the snapshot's tail: the replaced card table is emptied in slices after the command answered
        dec["after_snapshot_old_cards_dropped"] = await decisions(access, cards, recorder, None)
        async with access.sync.lock:  # held by that cleanup until it is done
            pass
        dec["quiet_after"] = await decisions(access, cards, recorder, None, quiet=True)
        # the quiet p99 moves between windows of the same run (1.3-2.3 ms on the development VM): every quiet
        # window pooled is the steadier denominator; the ratios to the first and to the adjacent one stay beside it
        dec["quiet_pooled"] = summary(QUIET_ALL)
        for name in ("prune", "backup", "snapshot"):
            dec[name]["p99_ratio_to_quiet_pooled"] = round(dec[name]["p99_ms"] / dec["quiet_pooled"]["p99_ms"], 2)
        res["decision"] = dec
        res["bytes_after_prune"] = db_bytes(ctx)
        full = res[f"at_{DAYS}_days"]  # before the prune: every row built is there
        res["bytes_per_reading"] = round(full["bytes"].get("readings", 0) / max(1, full["rows"]["readings"]), 1)
        res["bytes_per_event"] = round(full["bytes"].get("events", 0) / max(1, full["rows"]["events"]), 1)
    finally:
        await stop_context(ctx)


def timed(fn: Any, n: int) -> dict[str, Any]:
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = fn()
        lat.append(time.perf_counter() - t0)
        assert r.status_code == 200, (r.status_code, r.text[:300])
    return summary(lat)


def paging(client: httpx.Client, path: str, limit: int, proc: psutil.Process | None = None) -> dict[str, Any]:
    """PAGES pages of ``limit`` from the start (the cursor in ``next``): rows/s (wall, the client's JSON parse
    included) and rows per CPU second of the daemon (what the server spent: steadier on a shared box)."""
    after, rows, t0, mine = "0", 0, time.perf_counter(), time.process_time()
    cpu0 = sum(proc.cpu_times()[:2]) if proc else 0.0
    for _ in range(PAGES):
        body = client.get(f"{path}after={after}&limit={limit}").json()
        if not body["items"]:
            break
        rows += len(body["items"])
        after = str(body["next"])
    dt = time.perf_counter() - t0
    out = {"rows": rows, "s": round(dt, 3), "rows_per_s": round(rows / dt) if dt else None,
           "client_cpu_s": round(time.process_time() - mine, 3)}
    if proc is not None:
        cpu = sum(proc.cpu_times()[:2]) - cpu0
        out.update(daemon_cpu_s=round(cpu, 3), rows_per_daemon_cpu_s=round(rows / cpu) if cpu else None)
    return out


def started(gw: GatewayProc) -> float:
    """Spawn to health 200, in seconds."""
    t0 = time.perf_counter()
    gw.start(wait=False)
    wait_until(gw._healthy, 600, interval=0.05, what="ready on the year's database")
    return round(time.perf_counter() - t0, 2)


def daemon(work: Path, res: dict[str, Any]) -> None:
    """The daemon on the built database: its first start (the areas the in-process build did not load migrate,
    after a backup of the whole file: what an upgrade costs), a restart (what every other start costs), the HTTP
    figures, then each duty-page and pull query's plan and time on the file (bench/year_pages.py)."""
    broker = Mosquitto(work).start()
    gw = GatewayProc(work, broker.port, site_toml(DAYS, METERS))
    try:
        out: dict[str, Any] = {"start_to_ready_s": started(gw)}
        out["first_start_migrated_after_backup"] = "need migrating; backup first" in gw.log.read_text()
        gw.stop(60)
        out["restart_to_ready_s"] = started(gw)
        out["restart_imports_s"] = imports_s()
        proc = psutil.Process(gw.proc.pid)  # type: ignore[union-attr]
        time.sleep(2)
        out["rss_ready_mb"] = round(proc.memory_info().rss / 1e6, 1)
        # kept-alive connections, as a page and central have: the figures are the server's, not a TCP handshake's
        with httpx.Client(base_url=f"{gw.url}/api/v1", headers=gw.headers("operator"), timeout=120) as op, \
                httpx.Client(base_url=f"{gw.url}/api/v1", headers=gw.headers("central"), timeout=120) as central:
            out.update(http_figures(op, central, proc))
        out["rss_after_mb"] = round(proc.memory_info().rss / 1e6, 1)
        res["daemon"] = out
    finally:
        gw.stop(60)
        broker.stop()
    res["daemon"]["query_plans"] = query_plans(gw.data_dir / "gateway.db", DAYS)


def imports_s() -> float:
    """What a start costs before it opens the database: the interpreter and the daemon's imports (fresh process)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import gateway.cli, gateway.daemon, gateway.api.app"], check=True,
                   cwd=ROOT)
    return round(time.perf_counter() - t0, 2)


def http_figures(op: httpx.Client, central: httpx.Client, proc: psutil.Process | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    duty = ["/alarms?state=open", "/console/events?limit=40", "/doors", "/meters", "/handover"]
    out["duty_page"] = {p: timed(lambda p=p: op.get(p), HTTP_N) for p in duty}
    out["duty_page_all"] = timed(lambda: [op.get(p) for p in duty][-1], HTTP_N)
    # /handover above counts the whole log (no handover ever recorded); a site records one every shift
    assert op.post("/handover", json={"from": "night", "to": "day"}).status_code == 201
    out["handover_after_one_recorded"] = timed(lambda: op.get("/handover"), HTTP_N)
    out["meter_history_500"] = timed(lambda: op.get("/console/meters/m7/history?limit=500"), HTTP_N)
    out["latest_events"] = timed(lambda: op.get("/console/events?limit=40"), HTTP_N)
    start, end = format_ts(datetime.now(UTC) - timedelta(days=DAYS + 3)), format_ts(datetime.now(UTC))
    out["one_meter_whole_history"] = paging(central, f"/readings?meter=m7&from={start}&to={end}&", 5000)
    out["events_paging"] = paging(central, "/events?", 1000, proc)
    out["readings_paging"] = paging(central, "/readings?", 5000, proc)
    now = datetime.now(UTC)
    quarter = f"{now.year if now.month > 3 else now.year - 1}Q{((now.month - 1) // 3 - 1) % 4 + 1}"
    out["billing_quarter"] = quarter
    out["billing_json"] = timed(lambda: central.get(f"/billing?quarter={quarter}"), max(3, HTTP_N // 5))
    out["billing_csv"] = timed(lambda: central.get(f"/billing?quarter={quarter}", headers={"Accept": "text/csv"}),
                               max(3, HTTP_N // 5))
    return out


def main() -> dict[str, Any]:
    res: dict[str, Any] = {"size": {"days": DAYS, "meters": METERS, "events_per_day": EVENTS, "cards": CARDS,
                                    "billing_years": BILLING_YEARS, "audit_per_day": AUDIT},
                           "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]}
    keep = os.environ.get("YEAR_KEEP")  # a folder to build in and leave behind (to look at the database after)
    with contextlib.nullcontext(keep) if keep else tempfile.TemporaryDirectory(prefix="egw-year-") as tmp:
        work = Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        asyncio.run(in_process(work, res))
        if DAEMON:
            daemon(work, res)
    res["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    res["machine"] = {"cpus": psutil.cpu_count(), "python": sys.version.split()[0]}
    return res


if __name__ == "__main__":
    out = main()
    write_results("year", out)
    print(json.dumps(out, indent=1))

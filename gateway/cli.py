"""``estate-gateway``: run, check-config, simulate, demo, token new, backup, restore, tls new.

Exit codes: 0 ok, 2 bad config or usage, 1 runtime failure.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway import __version__

if TYPE_CHECKING:  # pragma: no cover - typing only; the CLI imports lazily to start fast
    from gateway.config import GatewayConfig

EXIT_OK, EXIT_RUNTIME, EXIT_CONFIG = 0, 1, 2


def setup_logging(level: str = "INFO") -> None:
    """One line per event on stderr; journald adds the timestamp under systemd."""
    under_journald = bool(os.environ.get("JOURNAL_STREAM"))
    fmt = "%(levelname)s %(name)s: %(message)s" if under_journald else \
        "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), format=fmt, stream=sys.stderr)
    logging.getLogger("gateway.mqtt").setLevel(logging.WARNING)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def _load(path: str) -> Any:
    """Load the config or exit 2 with every problem, one per line."""
    from gateway.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def cmd_run(args: argparse.Namespace) -> int:
    from gateway.daemon import Daemon
    from gateway.store import SchemaTooNew, StoreCorrupt

    cfg = _load(args.config)
    why = _console_port_busy(cfg)
    if why:
        print(f"console/API port {why}: stop that program, or set [api] listen to a free port", file=sys.stderr)
        return EXIT_RUNTIME
    _import_components()
    try:
        asyncio.run(Daemon(cfg).run())
    except StoreCorrupt as exc:
        print(_corrupt_paragraph(exc, args.config), file=sys.stderr)
        return EXIT_RUNTIME
    except sqlite3.Error as exc:
        print(f"estate-gateway cannot start: the database {cfg.db_path} cannot be opened or written ({exc}). "
              f"Nothing was changed. Check that {cfg.data_path} exists, belongs to the user the gateway runs as "
              "and has free space, then start it again.", file=sys.stderr)
        return EXIT_RUNTIME
    except SchemaTooNew as exc:
        logging.getLogger("gateway").error("%s", exc)
        return EXIT_RUNTIME
    except RuntimeError as exc:
        logging.getLogger("gateway").error("%s", exc)
        return EXIT_RUNTIME
    return EXIT_OK


def _corrupt_paragraph(exc: Any, config: str) -> str:
    """One paragraph, no traceback: what is wrong, which file, and the restore command with the newest backup."""
    head = (f"estate-gateway cannot start: the database {exc.path} is damaged or is not a gateway database "
            f"(SQLite says: {exc.reason}). Nothing was changed. ")
    if exc.newest_backup is not None:
        return head + (f"Restore the newest backup with `estate-gateway restore -c {config} --from "
                       f"{exc.newest_backup}` (the damaged file is kept beside it as {exc.path.name}.before-restore), "
                       "then start the gateway again: events recorded after that backup are lost here, and seq "
                       "continues above the last one central received (a store.rewound event says which).")
    return head + (f"There is no backup to restore in the backup folder: move {exc.path} aside (keep it for a "
                   "repair with `sqlite3 FILE .recover`) and start again with an empty database; seq continues "
                   "above the last one central received (a store.rewound event says which).")


def _console_port_busy(cfg: GatewayConfig) -> str | None:
    """Why the console cannot listen (a port in use, and by whom), before anything starts. A gateway already
    running on this data_dir is left to the instance lock to say (it holds the port too)."""
    from gateway.daemon import InstanceLock
    from gateway.ports import busy

    if InstanceLock.held(cfg.data_path):
        return None
    return busy(cfg.api.host, int(cfg.api.listen.rpartition(":")[2]))


def _import_components() -> None:
    """Components register their check-config hooks when imported."""
    from gateway.daemon import default_components

    default_components()


def cmd_check_config(args: argparse.Namespace) -> int:
    from gateway.config import check_config

    _import_components()
    problems = check_config(args.config)
    for problem in problems:
        print(problem, file=sys.stderr)
    if any(p.severity != "warning" for p in problems):
        return EXIT_CONFIG
    print(f"{args.config}: ok")
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    control = Path(args.control) if args.control else cfg.data_path / "simulate.sock"
    return asyncio.run(_simulate(cfg, None if args.no_control else control))


SIMULATORS = ("drivers.sim.osdp_reader", "drivers.sim.meters", "drivers.sim.cjt188", "drivers.sim.panel_demo")


async def _simulate(cfg: GatewayConfig, control: Path | None) -> int:
    """Simulated hardware for every device in the config that lives on this machine; their state kept in
    ``data_dir/simulate-state.json``; the demo control on ``control`` (``estate-gateway demo``)."""
    import importlib
    import signal

    from drivers.sim.control import STATE_NAME, SimHub, serve_control
    from drivers.sim.state import SimState

    log = logging.getLogger("gateway.simulate")
    try:
        cfg.data_path.mkdir(parents=True, exist_ok=True)
        hub = SimHub(SimState(cfg.data_path / STATE_NAME))
    except OSError as exc:
        log.warning("no simulator state in %s (%s): meters start from their initial totals", cfg.data_path, exc)
        hub, control = SimHub(), None
    tasks = []
    for module in SIMULATORS:
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            log.warning("simulator %s not available: %s", module, exc)
            continue
        tasks.append(asyncio.create_task(mod.serve_for_config(cfg, hub), name=module))
        log.info("simulating %s", module.rsplit(".", 1)[-1])
    tasks.append(asyncio.create_task(hub.state.keep_saving(), name="state"))
    if control is not None:
        tasks.append(asyncio.create_task(serve_control(hub, control), name="demo control"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    failed = [t for t in done if t is not waiter and t.exception() is not None]
    for t in failed:
        log.error("simulator %s failed: %s", t.get_name(), t.exception())
    for t in [waiter, *tasks]:
        t.cancel()
    await asyncio.gather(waiter, *tasks, return_exceptions=True)
    return EXIT_RUNTIME if failed else EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Talk to a running ``simulate``: present a card, open a door, raise or restore an alarm."""
    from drivers.sim.control import ask, card_from_text

    if args.demo_command == "card":
        try:
            line = f"card {args.reader} {card_from_text(args.card)}"
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return EXIT_CONFIG
    elif args.demo_command == "door":
        line = f"door {args.reader} {args.state}"
    elif args.demo_command in ("alarm", "restore"):
        extra = [str(args.zone)] if args.zone is not None else []
        line = " ".join([args.demo_command, args.kind, *extra, *([args.receiver] if args.receiver else [])])
    else:
        line = "status"
    if not args.control and not Path(args.config).is_file():
        print(f"no {args.config} here: run this in the estate-gateway folder (where `make demo` runs), "
              "or give -c FILE (the config simulate runs) or --control SOCKET", file=sys.stderr)
        return EXIT_CONFIG
    path = Path(args.control) if args.control else _load(args.config).data_path / "simulate.sock"
    try:
        reply = ask(path, line)
    except OSError as exc:
        print(f"no simulator answers on {path} ({exc.strerror or exc}): start `make demo` "
              f"(or `estate-gateway simulate -c {args.config}`) first", file=sys.stderr)
        return EXIT_RUNTIME
    ok, _, text = reply.partition(" ")
    print(text, file=sys.stdout if ok == "ok" else sys.stderr)
    return EXIT_OK if ok == "ok" else EXIT_CONFIG


def cmd_token_new(args: argparse.Namespace) -> int:
    from gateway.api.auth import ROLES, hash_token, new_token

    if args.role not in ROLES:
        print(f"unknown role {args.role!r}: one of {', '.join(ROLES)}", file=sys.stderr)
        return EXIT_CONFIG
    from gateway.config import ANY_ID

    if not re.match(ANY_ID, args.name):
        print(f"bad name {args.name!r}: letters, digits, '.', '_' or '-' (it must be valid in the config)", file=sys.stderr)
        return EXIT_CONFIG
    token = new_token()
    print(token)
    print("# paste into the config; the token above is shown only now:", file=sys.stderr)
    print(f'[[api.tokens]]\nname = "{args.name}"\nrole = "{args.role}"\nsha256 = "{hash_token(token)}"', file=sys.stderr)
    return EXIT_OK


def cmd_backup(args: argparse.Namespace) -> int:
    from gateway.daemon import Backups

    cfg = _load(args.config)
    if not cfg.db_path.exists():
        print(f"no database at {cfg.db_path}", file=sys.stderr)
        return EXIT_RUNTIME
    try:
        path = Backups(cfg).take(Path(args.to) if args.to else None)
    except (OSError, sqlite3.Error) as exc:  # a full disk: no partial file is left behind
        print(f"backup failed: {exc} (no partial backup was left)", file=sys.stderr)
        return EXIT_RUNTIME
    print(path)
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    from gateway.daemon import InstanceLock
    from gateway.store import secure_file

    cfg = _load(args.config)
    src = Path(args.source)
    if InstanceLock.held(cfg.data_path):
        print("the gateway is running: stop it first (systemctl stop estate-gateway)", file=sys.stderr)
        return EXIT_RUNTIME
    try:
        conn = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
        conn.execute("SELECT COUNT(*) FROM events").fetchone()
        conn.close()
    except sqlite3.Error as exc:
        print(f"{src}: not a gateway database: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    if ok != "ok":
        print(f"{src}: integrity check failed: {ok}", file=sys.stderr)
        return EXIT_RUNTIME
    db = cfg.db_path
    db.parent.mkdir(parents=True, exist_ok=True)
    if db.exists():
        keep = db.with_name(db.name + ".before-restore")
        shutil.copy2(db, keep)
        secure_file(keep)
        print(f"current database kept as {keep}", file=sys.stderr)
    if not db.with_name(db.name + ".seq-used").exists():  # the seq files found are kept (docs/hardening.md)
        print(f"no seq files beside {db}: seq reuse after this restore cannot be detected (no store.rewound); "
              "copy the old data_dir's gateway.db.seq-* files here first if you have them", file=sys.stderr)
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    shutil.copy2(src, db)
    secure_file(db)
    # the next start sees the database went back and says so (store.rewound, cause "restore")
    restored = db.with_name(db.name + ".restored")
    restored.write_text(str(src), encoding="utf-8")
    secure_file(restored)
    print(f"restored {src} -> {db}")
    return EXIT_OK


def cmd_tls_new(args: argparse.Namespace) -> int:
    from gateway.tls import default_names, make_site_certificate

    names, addresses = default_names()
    names = args.host or names
    addresses = args.ip or addresses
    try:
        made = make_site_certificate(Path(args.out), args.site, names, addresses)
    except (OSError, ValueError) as exc:
        print(f"cannot make the site certificate in {args.out}: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    print(f"server certificate for {', '.join(names + addresses)}, signed by the site CA {made.ca_cert}")
    print("# in the config's [api] section:")
    print(f'listen = "0.0.0.0:8443"\ntls_cert_file = "{made.cert}"\ntls_key_file = "{made.key}"')
    print(f"# phones trust the console once by installing {made.ca_cert} (docs/security.md: HTTPS on the site network)")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="estate-gateway", description="Edge gateway of an estate's duty room")
    p.add_argument("--version", action="version", version=f"estate-gateway {__version__}")
    p.add_argument("--log-level", default=os.environ.get("EGW_LOG_LEVEL", "INFO"))
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(name: str, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("-c", "--config", required=True, help="the gateway's TOML config")
        return sp

    with_config("run", "run the daemon").set_defaults(fn=cmd_run)
    with_config("check-config", "validate the config and its meter profiles").set_defaults(fn=cmd_check_config)
    sim = with_config("simulate", "run simulated hardware matching the config")
    sim.add_argument("--control", help="the demo control's Unix socket (default: data_dir/simulate.sock)")
    sim.add_argument("--no-control", action="store_true", help="no demo control socket")
    sim.set_defaults(fn=cmd_simulate)
    _add_demo(sub)
    b = with_config("backup", "online backup of the database")
    b.add_argument("--to", help="file to write (default: data_dir/backups/gateway-<time>.db)")
    b.set_defaults(fn=cmd_backup)
    r = with_config("restore", "replace the database with a backup (gateway stopped)")
    r.add_argument("--from", dest="source", required=True, help="backup file")
    r.set_defaults(fn=cmd_restore)
    tok = sub.add_parser("token", help="API tokens")
    tsub = tok.add_subparsers(dest="token_command", required=True)
    tn = tsub.add_parser("new", help="make a new token; prints it once and the config lines")
    tn.add_argument("--role", required=True)
    tn.add_argument("--name", required=True)
    tn.set_defaults(fn=cmd_token_new)
    tls = sub.add_parser("tls", help="HTTPS for the console and API on the site network")
    tlsub = tls.add_subparsers(dest="tls_command", required=True)
    tl = tlsub.add_parser("new", help="make a site CA (kept if present) and a server certificate it signs")
    tl.add_argument("--out", required=True, help="folder for site-ca.pem/.key and server.pem/.key")
    tl.add_argument("--site", default="estate", help="site name shown in the certificates")
    tl.add_argument("--host", action="append", help="host name a phone will use (repeat; default: this machine's)")
    tl.add_argument("--ip", action="append", help="address a phone will use (repeat; default: this machine's)")
    tl.set_defaults(fn=cmd_tls_new)
    return p


def _add_demo(sub: Any) -> None:
    """``estate-gateway demo ...``: the demo's hands (docs/demo.md)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default="config/demo.toml",
                        help="the config simulate runs (default config/demo.toml); its data_dir holds the socket")
    common.add_argument("--control", help="the control socket (default: the config's data_dir/simulate.sock)")
    demo = sub.add_parser("demo", help="present a card, open a door, raise/restore an alarm in a running simulate")
    dsub = demo.add_subparsers(dest="demo_command", required=True)
    card = dsub.add_parser("card", parents=[common], help="present a card at a simulated reader")
    card.add_argument("--reader", required=True, help="reader id from the config, e.g. r-b3u1")
    card.add_argument("--card", required=True, help="26:0a1b2c40 (bits:hex) or 26:12:345 (bits:facility:number)")
    door = dsub.add_parser("door", parents=[common], help="open or close a simulated door (its contact)")
    door.add_argument("--reader", required=True)
    door.add_argument("state", choices=["open", "closed"])
    for name, what in (("alarm", "raise"), ("restore", "restore")):
        a = dsub.add_parser(name, parents=[common], help=f"{what} an alarm at a simulated panel")
        a.add_argument("kind", help="fire, smoke, panic, burglary, fault, supervisory, test")
        a.add_argument("--zone", type=int, help="zone (default: a fitting zone of the config)")
        a.add_argument("--receiver", help="alarm receiver id (default: the first simulated)")
    dsub.add_parser("status", parents=[common], help="what the running simulator offers")
    demo.set_defaults(fn=cmd_demo)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_CONFIG if exc.code not in (0, None) else EXIT_OK
    del parser  # every subcommand's parser (0.1 MB) is not held for the daemon's life
    setup_logging(args.log_level)
    try:
        return int(args.fn(args) or 0)
    except SystemExit as exc:
        return int(exc.code or 0)
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

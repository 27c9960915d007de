"""The import half of bench_memory: run as a script in a fresh interpreter (the daemon's own python), it imports
what the daemon imports, group by group in the daemon's order, and prints the RSS each group adds as JSON.

Its own imports are kept to what the daemon loads anyway (os, json), so the interpreter line is the daemon's.
"""

from __future__ import annotations

import json
import os
from typing import Any

MB = 1e6

#: (label, code) in the daemon's order; each step's RSS is measured after it
IMPORT_STEPS: list[tuple[str, str]] = [
    ("OpenSSL, asyncio (asyncio imports ssl)", "import asyncio, ssl, concurrent.futures"),
    ("sqlite3 (libsqlite3)", "import sqlite3"),
    ("command line, logging, tomllib", "import argparse, logging, shutil, uuid, tomllib, gateway.cli"),
    ("pydantic, pydantic-core", "import pydantic, pydantic_core; from pydantic import BaseModel\n"
                                "class _M(BaseModel):\n    x: int"),
    ("FastAPI, Starlette, anyio (and opentelemetry's API, which FastAPI imports)",
     "import gateway.api, fastapi, fastapi.routing, starlette.applications"),
    ("uvicorn (server, h11, config)", "import uvicorn, uvicorn.server, uvicorn.protocols.http.h11_impl"),
    ("gateway core: config, store, events, commands, daemon", "import gateway.config, gateway.daemon"),
    ("area: access", "import gateway.access"),
    ("area: metering", "import gateway.metering"),
    ("area: alarms (DC-09, Contact ID, GB/T 26875 decoders and code tables)", "import gateway.alarms"),
    ("area: commissioning", "import gateway.commissioning"),
    ("area: console", "import gateway.console"),
    ("API: routes, models, i18n catalogues, limits",
     "import gateway.api.app, gateway.api.limits; from gateway.api.routes import area_routers; area_routers()"),
    ("uplink (paho-mqtt)", "import gateway.uplink"),
    ("driver: Modbus (pymodbus)", "import drivers.modbus.transport, drivers.modbus.relays"),
    ("driver: serial readers (pyserial)", "import drivers.ascii_reader, serial"),
    ("driver: OSDP (libosdp)", "import drivers.osdp"),
]

#: what the daemon does not load until needed, measured by loading it on top
SKIPPED: list[tuple[str, str]] = [
    ("pydantic.v1 (stand-in; FastAPI only asks whether a type is a v1 model)",
     "import sys; del sys.modules['pydantic.v1']; import pydantic.v1"),
    ("uvicorn.main: uvicorn's command line, click, multiprocessing (stand-in)",
     "import sys; del sys.modules['uvicorn.main']; import uvicorn.main, uvicorn.supervisors"),
    ("logging.config: uvicorn's dictConfig, logging.handlers, socketserver (stand-in)",
     "import sys; del sys.modules['logging.config']; import logging.config"),
    ("urllib.request: paho's proxy lookup, only with PySocks (stand-in)",
     "import sys; del sys.modules['urllib.request']; import urllib.request"),
    ("difflib (config advice, only for a wrong config)", "import difflib"),
    ("ctypes (malloc_trim after a card snapshot)", "import ctypes"),
]


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / MB
    return 0.0


def import_steps() -> dict[str, Any]:
    """Run in a fresh interpreter (the daemon's own: .venv/bin/python)."""
    import warnings

    warnings.simplefilter("ignore")
    out: dict[str, Any] = {"interpreter_mb": round(_rss_mb(), 2), "steps_mb": {}, "skipped_mb": {}}
    prev = _rss_mb()
    for label, code in IMPORT_STEPS:
        exec(compile(code, label, "exec"), {})
        now = _rss_mb()
        out["steps_mb"][label] = round(now - prev, 2)
        prev = now
    out["all_imports_mb"] = round(prev, 2)
    for label, code in SKIPPED:
        exec(compile(code, label, "exec"), {})
        now = _rss_mb()
        out["skipped_mb"][label] = round(now - prev, 2)
        prev = now
    return out



if __name__ == "__main__":
    print(json.dumps(import_steps()))

"""The API's stand-ins for pydantic.v1 and uvicorn's command line (gateway/api/__init__.py): the daemon's API is
built without loading either, and anything that really asks for them gets the real module. Each check runs in a
fresh interpreter (the stand-ins are only registered when nothing loaded the real module first)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(120)


def run_fresh(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_the_api_and_every_area_load_without_pydantic_v1_or_uvicorns_command_line() -> None:
    out = run_fresh("""
        import sys
        import gateway.daemon
        gateway.daemon.Daemon  # what _start_http imports, in its order
        import gateway.api
        import uvicorn
        import gateway.api.app, gateway.api.limits
        from gateway.api.routes import area_routers
        area_routers()
        gateway.daemon.default_components()
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("click", "multiprocessing")
                        or m.startswith("pydantic.v1."))
        print(loaded, uvicorn.Server.__module__, type(sys.modules["pydantic.v1"]).__name__)
    """)
    assert out.split() == ["[]", "uvicorn.server", "module"]


def test_asking_for_the_real_thing_loads_it() -> None:
    out = run_fresh("""
        import sys
        import gateway.api
        from pydantic import v1
        print(v1.BaseModel.__name__)                 # the stand-in's answer to FastAPI
        print(v1.validator.__module__)               # anything else: the real pydantic.v1
        import pydantic.v1
        print(pydantic.v1.BaseModel.__module__, "click" in sys.modules)
        import uvicorn.main
        print(uvicorn.main.main.__module__ if hasattr(uvicorn.main, "main") else "?")
        from uvicorn import run
        print(callable(run))
    """)
    lines = out.split("\n")
    assert lines[0] == "_NoV1Model"
    assert lines[1] == "pydantic.v1.class_validators"
    assert lines[2] == "pydantic.v1.main False"
    assert lines[4] == "True"


def test_a_v1_model_on_the_stand_in_is_refused_loudly() -> None:
    out = run_fresh("""
        import gateway.api
        from pydantic.v1 import BaseModel
        try:
            class Old(BaseModel):
                x: int
        except TypeError as exc:
            print("refused:", "pydantic 2" in str(exc))
    """)
    assert out.strip() == "refused: True"


def test_uvicorns_logging_config_and_pahos_urllib_request_stay_unloaded_until_read() -> None:
    out = run_fresh("""
        import sys
        import gateway.daemon, gateway.uplink, uvicorn, uvicorn.config
        import gateway.api.app
        print(sorted(m for m in ("logging.handlers", "socketserver", "http.cookiejar")  # what only they load
                     if m in sys.modules))
        import logging.config, urllib.request
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})   # the real dictConfig
        print(sys.modules["logging.config"].__file__.endswith("config.py"), logging.config.fileConfig.__module__)
        from urllib.request import getproxies
        import paho.mqtt.client as paho
        print(callable(getproxies), paho.urllib.request.proxy_bypass.__module__, urllib.request.__file__ is not None)
        uvicorn.Config(lambda *a: None, log_config=None).configure_logging()
    """)
    assert out.split("\n")[:3] == ["[]", "True logging.config", "True urllib.request True"]

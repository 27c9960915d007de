"""The HTTP API and the console's pages (FastAPI, served by uvicorn).

Two of the libraries it stands on load, at import, code that a running gateway never uses, and hold it in
memory for the daemon's life (docs/hardening.md, "Idle memory: what the 60 MB are"):

* FastAPI asks, for every route parameter and response model it sets up and for objects it encodes, whether
  the type is a *pydantic.v1* model, and to ask it imports ``pydantic.v1``: 1-2 MB for a compatibility
  layer nothing here uses (every model is pydantic 2; FastAPI refuses v1 models anyway).
* ``import uvicorn`` imports its command line (``uvicorn.main``: click, and multiprocessing for its
  reloader and workers): about 1.5 MB; the daemon runs ``uvicorn.Server`` in its own loop.

So before either is imported, each is registered as a stand-in that answers what the library asks at import
(``pydantic.v1.BaseModel``, a class nothing is an instance of; ``uvicorn.main.Server``/``main``/``run``) and
loads the real module the moment anything else is read from it -- from then on it is the real one. A class
derived from the stand-in's ``BaseModel`` is refused with a TypeError (a v1 model there would be no model).
Two modules of the standard library get the same stand-in (:func:`gateway.memory.leave_unused_stdlib_unloaded`):
``logging.config`` (uvicorn's) and ``urllib.request`` (paho's). And FastAPI's own models (the OpenAPI schema's, about 40) are defined with pydantic's ``defer_build``
(:func:`gateway.memory.defer_model_builds`): built when the schema is first asked for, not at start.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Callable
from typing import Any

from gateway.memory import defer_model_builds, leave_unused_stdlib_unloaded, load_real, stand_in


class _NoV1Model:
    """What ``pydantic.v1.BaseModel`` is while v1 is not loaded: nothing is an instance or subclass of it."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("pydantic.v1 models are not supported here (gateway/api stands in for pydantic.v1); "
                        "use pydantic 2 models")


def _uvicorn_cli(attr: str) -> Callable[[types.ModuleType], Any]:
    """``uvicorn.main.main``/``run``: the real function, loaded when called (the daemon never calls them)."""
    def make(mod: types.ModuleType) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            return getattr(load_real("uvicorn.main", mod), attr)(*args, **kwargs)
        return call
    return make


stand_in("pydantic.v1", {"BaseModel": lambda mod: _NoV1Model})
stand_in("uvicorn.main", {"Server": lambda mod: importlib.import_module("uvicorn.server").Server,
                          "main": _uvicorn_cli("main"), "run": _uvicorn_cli("run")})
defer_model_builds()
leave_unused_stdlib_unloaded()

"""Giving freed heap back to the operating system, so RSS says what the daemon really holds.

ctypes is imported when memory is first released, not at start: an idle daemon that never applied a card
snapshot does not hold it. Modules the libraries import at start and the daemon never uses are stand-ins
until something reads from them (:func:`stand_in`; gateway/api registers them). And pydantic models build their validators on first use, not when defined
(docs/hardening.md, "Idle memory: what the 60 MB are").
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from typing import Any


def load_real(name: str, stand_in: types.ModuleType) -> Any:
    """The real module ``name`` (loaded now if only ``stand_in`` was there)."""
    if sys.modules.get(name) is stand_in:
        del sys.modules[name]
    return importlib.import_module(name)


def stand_in(name: str, lazy: dict[str, Callable[[types.ModuleType], Any]], *,
             on_parent: bool = False) -> types.ModuleType:
    """Register a stand-in for module ``name`` (unless it is loaded): ``lazy`` gives some attributes without
    loading it; any other attribute loads the real module. Dunder names (repr, inspect) load nothing.
    ``on_parent``: also set it as the loaded parent package's attribute, for code that says ``import a.b`` and
    then reads ``a.b.x`` (the real module, once loaded, replaces it there as an import always does)."""
    mod = types.ModuleType(name, f"stand-in for {name} until something needs it (gateway/memory.py)")

    def attribute(attr: str) -> Any:
        if attr in lazy:
            value = lazy[attr](mod)
            setattr(mod, attr, value)
            return value
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(load_real(name, mod), attr)

    mod.__getattr__ = attribute  # type: ignore[method-assign]
    registered = sys.modules.setdefault(name, mod)
    parent_name, _, child = name.rpartition(".")
    if on_parent and registered is mod:
        parent = importlib.import_module(parent_name)
        if child not in vars(parent):
            setattr(parent, child, mod)
    return registered


def leave_unused_stdlib_unloaded() -> None:
    """Two modules of the standard library that libraries here import at start and a running gateway never
    calls, each ~0.4-0.8 MB held for the daemon's life: ``logging.config`` (uvicorn.config imports it for
    ``dictConfig``/``fileConfig``, with ``logging.handlers``, ``socketserver`` and ``configparser``; the daemon
    gives uvicorn no logging config of its own, so its warnings go through the daemon's own log format) and
    ``urllib.request`` (paho imports it to read a proxy from the environment, which it only does when PySocks
    is installed). Each gets the stand-in that loads the real module at the first attribute read."""
    stand_in("logging.config", {}, on_parent=True)
    stand_in("urllib.request", {}, on_parent=True)


def release_memory() -> None:
    """Let glibc return freed heap pages: after a big snapshot (a 15 MB JSON parsed and freed).

    No gc.collect(): what is freed at these points is acyclic and already gone by reference counting,
    and a full collection would pause the loop (and the doors) for a noticeable time.
    """
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def defer_model_builds() -> None:
    """pydantic builds every model's validator and serializer (compiled, in Rust) when the class is defined:
    about 130 models here (the config's, the areas', the API's, FastAPI's OpenAPI models), many used only
    inside a route's own adapter, at a command that may never come, or when /openapi.json is asked for.
    pydantic's ``defer_build`` builds them on first use instead: 2 MB less held by an idle daemon, a few
    ms once per model later. Set on ``BaseModel``'s config, which every model's config starts from, before
    the models are defined (gateway.config.base and gateway.api call it first); a model that sets
    ``defer_build`` itself keeps its own choice."""
    from pydantic import BaseModel

    BaseModel.model_config.setdefault("defer_build", True)

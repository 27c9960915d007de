"""Giving freed heap back to the operating system, so RSS says what the daemon really holds.

ctypes is imported when memory is first released, not at start: an idle daemon that never applied a card
snapshot does not hold it. And pydantic models build their validators on first use, not when defined
(docs/hardening.md, "Idle memory: what the 60 MB are").
"""

from __future__ import annotations


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

"""A best-effort config from a file that did not validate, so the reference checks still run.

check-config must report every mistake in one run: a wrong type in one door must not hide
that another door names a reader that does not exist. After pydantic refuses the file,
this builds the config anyway, without validation (``model_construct``), taking each
value as written and the default where a key is absent. The reference checks then run
over it; their findings at places pydantic already reported are dropped (one problem
per mistake), and a check that trips over a value of the wrong type is skipped.
"""

from __future__ import annotations

from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from gateway.config.models import GatewayConfig


def salvage(raw: dict[str, Any]) -> GatewayConfig:
    built = _construct(GatewayConfig, raw)
    assert isinstance(built, GatewayConfig)
    return built


def _construct(model: type[BaseModel], raw: Any) -> BaseModel:
    data = raw if isinstance(raw, dict) else {}
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if name in data:
            values[name] = _value(field.annotation, data[name])
        elif field.default is not PydanticUndefined:
            values[name] = field.default
        elif field.default_factory is not None:
            values[name] = field.default_factory()  # type: ignore[call-arg]
        else:
            values[name] = None
    return model.model_construct(**values)


def _value(annotation: Any, raw: Any) -> Any:
    model = _model(annotation)
    if model is not None and isinstance(raw, dict):
        return _construct(model, raw)
    if get_origin(annotation) is list and isinstance(raw, list):
        item = get_args(annotation)[0] if get_args(annotation) else Any
        return [_value(item, x) for x in raw]
    return raw


def _model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None

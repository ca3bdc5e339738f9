"""Request checking against paddle-python-sdk's operation classes (the SDK's model of the API)."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any

from paddle_billing.Entities.DateTime import DateTime
from paddle_billing.Entities.Shared import CustomData
from paddle_billing.HasParameters import HasParameters
from paddle_billing.PaddleStrEnum import PaddleStrEnum
from paddle_billing.Undefined import Undefined


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check(value: Any, tp: Any, path: str = "body") -> list[str]:
    """Every reason Paddle would refuse `value` for the SDK type `tp` (empty when it is fine)."""
    if tp is Any:
        return []
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not Undefined]
        if value is None:
            return [] if type(None) in members else [f"{path} may not be null"]
        reasons = [check(value, m, path) for m in members if m is not type(None)]
        return [] if any(not r for r in reasons) else reasons[0] if reasons else [f"{path}?"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path} must be a list"]
        (item,) = typing.get_args(tp)
        return [e for i, v in enumerate(value) for e in check(v, item, f"{path}[{i}]")]
    if tp is CustomData:
        return [] if isinstance(value, dict | list) else [f"{path} must be an object"]
    if tp in (DateTime,) or tp is str:
        return [] if isinstance(value, str) else [f"{path} must be a string"]
    if tp is bool:
        return [] if isinstance(value, bool) else [f"{path} must be a boolean"]
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path} must be an integer"]
    if tp is type(None):
        return [] if value is None else [f"{path} must be null"]
    if isinstance(tp, type) and issubclass(tp, PaddleStrEnum):
        allowed = {
            str(v)
            for k, v in tp.members().items()
            if not k.startswith("_") and isinstance(v, str | PaddleStrEnum)
        }
        return [] if value in allowed else [f"{path}: {value!r} is not one of {sorted(allowed)}"]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            return [f"{path} must be an object"]
        fields = {f.name: f for f in dataclasses.fields(tp)}
        hints = _hints(tp)  # type: ignore[arg-type]
        errors: list[str] = []
        for key, sub in value.items():
            if key not in fields:
                errors.append(f"{path}.{key} is not a field of {tp.__name__}")
            else:
                errors.extend(check(sub, hints[key], f"{path}.{key}"))
        for name, field in fields.items():
            required = (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            )
            if required and name not in value and not _may_omit(tp, name):
                errors.append(f"{path}.{name} is required by {tp.__name__}")
        return errors
    return []


def _may_omit(tp: type, name: str) -> bool:
    # CreateAdjustment's items are required in the constructor but left out for a full refund.
    return tp.__name__ == "CreateAdjustment" and name == "items"


def allowed_query(operation: HasParameters) -> frozenset[str]:
    """The query names an SDK list operation can send (from one with every filter set)."""
    return frozenset(operation.get_parameters())

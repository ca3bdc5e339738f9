"""JSON for the sandbox gateway's events, so they travel through the webhook inbox like Stripe's.

The event, the subscription view, the invoice and their parts are attrs classes of the core, so
one pair of functions walks their fields: an event's JSON has the same names as the classes
(nothing is mapped by hand, and a field added to the subscription's shape travels at once).
"""

from __future__ import annotations

import enum
import json
import types
import typing
from datetime import datetime
from functools import cache
from typing import Any

import attrs

from responseiq_billing.application.ports import GatewayEvent

Json = Any


def _encode(value: object) -> Json:
    kind = type(value)
    if attrs.has(kind):
        return {field.name: _encode(getattr(value, field.name)) for field in attrs.fields(kind)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | bool):
        return value
    raise TypeError(f"the sandbox codec has no JSON form for {type(value).__name__}")


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(kind: Any, data: Json) -> Any:
    if isinstance(kind, types.UnionType):  # `X | None`
        if data is None:
            return None
        (kind,) = (arm for arm in typing.get_args(kind) if arm is not type(None))
    if attrs.has(kind):
        hints = _hints(kind)
        return kind(
            **{
                field.name: _decode(hints[field.name], data[field.name])
                for field in attrs.fields(kind)
                if field.name in data
            }
        )
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind(data)
    if kind is datetime:
        return datetime.fromisoformat(data)
    return data


def encode_event(event: GatewayEvent) -> str:
    return json.dumps(_encode(event), sort_keys=True)


def decode_event(payload: str) -> GatewayEvent:
    event: GatewayEvent = _decode(GatewayEvent, json.loads(payload))
    return event


class SandboxEventDecoder:
    """`application.ports.EventDecoder` for the sandbox gateway's payloads."""

    def decode(self, payload: str) -> GatewayEvent:
        return decode_event(payload)

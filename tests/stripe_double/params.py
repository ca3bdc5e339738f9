"""Form decoding and parameter checking against stripe-python's typed params (Stripe's spec)."""

from __future__ import annotations

import functools
import types
import typing
from typing import Any
from urllib.parse import parse_qsl

import typing_extensions

# Keys of stripe's RequestOptions, which some params classes inherit but never go on the wire.
_OPTION_KEYS = frozenset(
    {
        "api_key",
        "stripe_version",
        "stripe_account",
        "stripe_context",
        "max_network_retries",
        "idempotency_key",
        "content_type",
        "headers",
    }
)


def decode_form(body: str) -> dict[str, Any]:
    """`a[b][0][c]=v` pairs (stripe-python's encoding) as nested dicts and lists of strings."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        head, _, rest = key.partition("[")
        parts = [head] + ([p.rstrip("]") for p in rest.split("[")] if rest else [])
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    result: dict[str, Any] = _listify(root)
    return result


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    # RequestOptions (inherited by some params classes) names StripeContext only for type checkers.
    return typing.get_type_hints(cls, localns={"StripeContext": object, "Mapping": typing.Mapping})


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and typing_extensions.is_typeddict(tp)


def _enum_values(args: tuple[Any, ...]) -> set[str]:
    """The values of the `Literal[...]` arms of a union, but Stripe's "unset" ``''``."""
    return {
        value
        for arg in args
        if typing.get_origin(arg) is typing.Literal
        for value in typing.get_args(arg)
        if value != ""
    }


def check(value: Any, tp: Any, path: str = "") -> list[str]:
    """Every reason Stripe would refuse `value` for the parameter type `tp` (empty when fine)."""
    if tp is Any:
        return []
    if _is_typeddict(tp):
        if not isinstance(value, dict):
            return [f"{path or 'params'} must be a hash"]
        hints = _hints(tp)
        errors: list[str] = []
        for key, sub in value.items():
            where = f"{path}[{key}]" if path else key
            if key not in hints or (not path and key in _OPTION_KEYS):
                errors.append(f"Received unknown parameter: {where}")
                continue
            errors.extend(check(sub, hints[key], where))
        for key in getattr(tp, "__required_keys__", frozenset()):
            if key not in value and key not in _OPTION_KEYS:
                errors.append(f"Missing required param: {path}[{key}]" if path else key)
        return errors
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value == "" and any(typing.get_args(a) == ("",) for a in args):
            return []  # Stripe's "unset" value
        if _enum_values(args):
            # stripe-python types an enum `Literal[...] | str` so that a value added later
            # still type-checks; Stripe itself refuses anything outside the listed values.
            args = tuple(arg for arg in args if arg is not str)
        best: list[str] | None = None
        for arg in args:
            found = check(value, arg, path)
            if not found:
                return []
            if best is None or len(found) < len(best):
                best = found
        return best or [f"Invalid value for {path}"]
    if origin is typing.Literal:
        return [] if value in args else [f"Invalid {path}: must be one of {', '.join(args)}"]
    if origin in (list, typing.List):  # noqa: UP006
        if not isinstance(value, list):
            return [f"Invalid array: {path}"]
        return [e for i, v in enumerate(value) for e in check(v, args[0], f"{path}[{i}]")]
    if origin in (dict, typing.Dict):  # noqa: UP006
        return [] if isinstance(value, dict) else [f"Invalid hash: {path}"]
    if (
        isinstance(tp, type)
        and typing.get_origin(tp) is None
        and tp.__name__ == "UntypedStripeObject"
    ):
        return [] if isinstance(value, dict) else [f"Invalid hash: {path}"]
    if origin is not None and getattr(origin, "__name__", "") == "UntypedStripeObject":
        return [] if isinstance(value, dict) else [f"Invalid hash: {path}"]
    if tp is bool:
        return [] if value in ("true", "false") else [f"Invalid boolean: {path}"]
    if tp is int:
        ok = isinstance(value, str) and value.lstrip("-").isdigit()
        return [] if ok else [f"Invalid integer: {path}"]
    if tp is float:
        try:
            float(value)
        except (TypeError, ValueError):
            return [f"Invalid decimal: {path}"]
        return []
    if tp is str:
        return [] if isinstance(value, str) else [f"Invalid string: {path}"]
    return []

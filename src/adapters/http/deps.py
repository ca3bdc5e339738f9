"""How handlers name what Litestar injects: by parameter name, from the container, unvalidated."""

from __future__ import annotations

from typing import Annotated, TypeAlias, TypeVar

from litestar.di import Dependency
from litestar.params import SkipValidationMarker

T = TypeVar("T")

# Injected values come from the composition root, not from clients, and several are
# Protocols that cannot be isinstance-checked: Litestar must not validate them.
Dep: TypeAlias = Annotated[T, Dependency(kind="named"), SkipValidationMarker()]

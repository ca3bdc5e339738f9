"""Routes get use cases by type: the parameter `start_checkout: Dep[StartCheckout]` is the
container's one StartCheckout, so a reader (or a static tool) follows a request from the route
to the use case through the annotation, and no list of names is kept by hand."""

from __future__ import annotations

from typing import Any

from litestar import Litestar

from responseiq_billing.adapters.app import create_app, dependency_name
from responseiq_billing.adapters.container import Container
from responseiq_billing.application.use_cases import ChangePlan, StartCheckout

APPLICATION = "responseiq_billing.application."


def _asked_for_by_type(app: Litestar) -> list[tuple[str, str, type]]:
    """(route, parameter, class) for every handler parameter that asks for an application class."""
    found = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            for parameter, field in handler.parsed_fn_signature.parameters.items():
                kind = field.annotation
                protocol = getattr(kind, "_is_protocol", False)  # ports: the clock, by name
                if (
                    isinstance(kind, type)
                    and kind.__module__.startswith(APPLICATION)
                    and not protocol
                ):
                    found.append((route.path, parameter, kind))
    return found


def test_every_use_case_a_route_asks_for_is_the_containers_instance_of_that_type(
    container: Container,
) -> None:
    app = create_app(container)
    asked = _asked_for_by_type(app)
    classes = {kind for _, _, kind in asked}
    assert {StartCheckout, ChangePlan} <= classes  # the walk reaches the API and the page
    wrong: list[tuple[str, str, Any]] = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            dependencies = handler.resolve_dependencies()
            for path, parameter, kind in asked:
                if path != route.path or parameter not in handler.parsed_fn_signature.parameters:
                    continue
                provided = dependencies[parameter].dependency()
                if parameter != dependency_name(kind) or not isinstance(provided, kind):
                    wrong.append((path, parameter, type(provided).__name__))
    assert wrong == []


def test_a_use_case_is_the_same_instance_wherever_a_route_asks_for_it(
    container: Container,
) -> None:
    app = create_app(container)
    instances = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            dependencies = handler.resolve_dependencies()
            if "start_checkout" in dependencies:
                instances[route.path] = dependencies["start_checkout"].dependency()
    assert len(instances) >= 2  # the API's checkout and the billing page's
    assert len({id(instance) for instance in instances.values()}) == 1
    assert next(iter(instances.values())) is container.start_checkout()

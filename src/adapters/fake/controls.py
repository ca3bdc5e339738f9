"""Sandbox control for the next payment: decline it, or make the bank ask for confirmation.

Stripe's test mode does this with special test cards (4000 0000 0000 0002, 4000 0027 6000
3184); the sandbox has no card numbers, so one call arms the fake gateway's next charge
(an upgrade or a renewal). Mounted only with the sandbox gateway, beside `/sandbox/clock`.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Router, post
from litestar.params import Body

from responseiq_billing.adapters.fake.gateway import FakeGateway


class NextPayment(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    outcome: Literal["declined", "requires_action"]


def sandbox_controls_router(fake: FakeGateway) -> Router:
    @post("/next-payment", status_code=200, sync_to_thread=False, include_in_schema=False)
    def next_payment(data: Annotated[NextPayment, Body()]) -> NextPayment:
        if data.outcome == "declined":
            fake.decline_next_payment()
        else:
            fake.require_action_next_payment()
        return data

    return Router(path="/sandbox", route_handlers=[next_payment])

"""Stored Stripe webhook payloads back to gateway events, for the inbox's worker."""

from __future__ import annotations

import json

from responseiq_billing.adapters.stripe.gateway import StripeGateway
from responseiq_billing.adapters.stripe.webhooks import translate_event
from responseiq_billing.application.ports import GatewayEvent, PaymentGateway


class StripeEventDecoder:
    """Stored Stripe payloads to gateway events; prices resolve through the gateway's price map."""

    def __init__(self, gateway: PaymentGateway) -> None:
        self._gateway = gateway

    def decode(self, payload: str) -> GatewayEvent:
        assert isinstance(self._gateway, StripeGateway)
        event: GatewayEvent = translate_event(json.loads(payload), self._gateway.prices)
        return event

"""Adapters: the gateways, storage and transports that plug into the billing core's ports."""

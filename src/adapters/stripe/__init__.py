"""The Stripe adapter: gateway, webhook verification and translation, and catalog setup."""

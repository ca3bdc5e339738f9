"""Tests of the Stripe adapter that only it has: request log, error translation, webhooks, setup."""

"""Drivers: how the Gherkin steps reach the billing service (use cases now, HTTP later)."""

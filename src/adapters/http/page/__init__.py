"""The Settings → Billing page: server-rendered HTML over the same use cases as the JSON API."""

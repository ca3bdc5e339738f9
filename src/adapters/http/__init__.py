"""The HTTP API (Litestar): billing routes, auth, error mapping, the card-data guard, sandbox pages."""

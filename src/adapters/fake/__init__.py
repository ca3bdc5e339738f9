"""In-memory adapters: the sandbox payment gateway, repositories and a controllable clock."""

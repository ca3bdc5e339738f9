"""Use cases and the ports they drive: what the billing core needs from the world."""

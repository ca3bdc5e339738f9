"""Unit tests: the domain rules, the use cases driven through the fakes, and the fake gateway."""

"""A local Paddle Billing double over real HTTP, for the Paddle adapter's tests."""

from tests.paddle_double.server import TEST_KEY, WEBHOOK_SECRET, PaddleDouble, Request

__all__ = ["TEST_KEY", "WEBHOOK_SECRET", "PaddleDouble", "Request"]

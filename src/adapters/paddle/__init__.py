"""The Paddle Billing adapter: the payment-gateway port on the official paddle-python-sdk."""

"""The PaymentGateway contract suite, run against every gateway adapter."""

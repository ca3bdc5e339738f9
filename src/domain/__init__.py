"""Pure billing model: money, plans, subscriptions and the timing rules of the help article."""

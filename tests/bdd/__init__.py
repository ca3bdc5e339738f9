"""The help article as executable Gherkin: step modules over a swappable billing driver."""

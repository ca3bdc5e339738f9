"""ResponseIQ Billing, installed as one package: ``responseiq_billing``.

The folders keep the hexagon's names (``domain``, ``application``, ``adapters``); the
distribution maps this folder to ``responseiq_billing`` (``package-dir`` in pyproject.toml), so
nothing generic lands at the top of site-packages.
"""

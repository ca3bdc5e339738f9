"""The README's walk-through on Paddle, with no Paddle account: `python -m tests.paddle_double.demo`.

One process runs the local Paddle double and the service exactly as `billing serve` builds it
with `BILLING_GATEWAY=paddle` (`PADDLE_API_BASE` pointing at the double), on one clock:

- at start it runs `billing paddle setup` against the double (products, prices, and the
  notification destination `<public url>/webhooks/paddle`, whose secret becomes
  `PADDLE_WEBHOOK_SECRET`);
- every notification the double records is delivered, signed, to that destination over HTTP
  (the real route verifies and stores it), then the inbox is drained, as `billing worker` does;
- two controls stand in for what only a person or time can do at Paddle:
  `POST /paddle-double/pay/{transaction_id}` (form `card=visa|mastercard|declined`): the
  customer pays on Paddle's checkout; `POST /paddle-double/clock/advance` (`{"days": n}`): time
  passes, with the worker's scheduled step running on its way, so a downgrade the service keeps
  is switched at Paddle an hour before the renewal, as a running worker would.

A demo and a test harness: the double is test code and holds nothing but memory.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import uvicorn
from dependency_injector import providers
from litestar import Router, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import ClientException
from litestar.params import Body, PathParameter

from responseiq_billing.adapters.app import create_app
from responseiq_billing.adapters.config import Settings, load_catalog
from responseiq_billing.adapters.container import Container, build_container
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.paddle.setup import run_setup
from tests.paddle_double.server import TEST_KEY, PaddleDouble
from tests.paddle_double.worker_steps import advance_with_worker

# Shared with `billing token` in the README's block; the demo's only, never a deployment's.
DEMO_AUTH_SECRET = "paddle-double-demo-auth-secret-not-for-production"
CARDS = ("visa", "mastercard", "declined")


class PaddleDemo:
    """The double, the container and the delivery of the double's notifications to the service."""

    def __init__(
        self,
        *,
        clock: ControllableClock,
        public_url: str,
        database_url: str,
        double_port: int = 0,
        auth_secret: str = DEMO_AUTH_SECRET,
    ) -> None:
        self.clock = clock
        self.double = PaddleDouble(clock).start(port=double_port)
        self.hook = f"{public_url}/webhooks/paddle"
        env = {
            "BILLING_GATEWAY": "paddle",
            "PADDLE_API_KEY": TEST_KEY,
            "PADDLE_API_BASE": self.double.url,
            "BILLING_PUBLIC_URL": public_url,
            "BILLING_AUTH_SECRET": auth_secret,
            "BILLING_DATABASE_URL": database_url,
        }
        catalog = load_catalog(None)
        report = run_setup(self.double.client(), catalog, notification_url=self.hook)
        assert report.endpoint_secret is not None, "the double shows a new destination's secret"
        self.secret = report.endpoint_secret
        self.settings = Settings.from_env(env | {"PADDLE_WEBHOOK_SECRET": self.secret})
        self.container: Container = build_container(self.settings)
        self.container.clock.override(providers.Object(clock))
        self._delivered = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()

    # -- delivery -------------------------------------------------------------------------------

    def deliver(self) -> int:
        """Post every notification not yet delivered, signed as Paddle signs it; then drain the
        inbox. Returns how many were delivered. Serialised: controls and the pump share it."""
        with self._lock:
            events = self.double.events[self._delivered :]
            for event in events:
                body = json.dumps(event)
                # Paddle signs a delivery with the wall-clock time it sends it at.
                signature = PaddleDouble.signed(body, int(time.time()), self.secret)
                answer = httpx.post(
                    self.hook,
                    content=body.encode(),
                    headers={"Paddle-Signature": signature},
                    timeout=30,
                )
                answer.raise_for_status()
                self._delivered += 1
            process = self.container.process_inbox()
            while process.run_once(limit=50).claimed:
                pass
            return len(events)

    def pump(self, every: float = 0.2) -> threading.Thread:
        """Deliver in the background, as Paddle does shortly after each change."""

        def run() -> None:
            while not self._stop.wait(every):
                try:
                    self.deliver()
                except httpx.HTTPError:
                    continue  # the server is starting or stopping: the next round retries

        thread = threading.Thread(target=run, name="paddle-double-deliveries", daemon=True)
        thread.start()
        return thread

    # -- what a customer and time do --------------------------------------------------------------

    def pay(self, transaction_id: str, card: str) -> str:
        try:
            txn = self.double.pay(transaction_id, card)
        except ValueError as error:
            raise ClientException("That transaction takes no payment.") from error
        self.deliver()
        return str(txn["status"])

    def advance(self, days: int) -> datetime:
        """Move time forward; on the way, the worker's scheduled step runs in the hour before
        each kept downgrade's renewal, as a running worker would (`advance_with_worker`)."""
        advance_with_worker(
            now=self.clock.now,
            target=self.clock.now() + timedelta(days=days),
            uow=self.container.uow(),
            move_clock=self.double.advance_to,
            deliver=self.deliver,
            apply_due_changes=self.container.apply_due_changes(),
        )
        return self.clock.now()

    def controls(self) -> Router:
        demo = self

        @post("/pay/{transaction_id:str}", status_code=200, sync_to_thread=True)
        def pay(
            transaction_id: Annotated[str, PathParameter()],
            data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
        ) -> dict[str, str]:
            card = data.get("card", "visa")
            if card not in CARDS:
                raise ClientException(f"card must be one of {', '.join(CARDS)}")
            return {"status": demo.pay(transaction_id, card)}

        @post("/clock/advance", status_code=200, sync_to_thread=True)
        def advance(data: Annotated[dict[str, Any], Body()]) -> dict[str, str]:
            days = data.get("days")
            if not isinstance(days, int) or not 0 < days <= 400:
                raise ClientException("days must be a whole number from 1 to 400")
            return {"now": demo.advance(days).isoformat()}

        return Router("/paddle-double", route_handlers=[pay, advance], include_in_schema=False)

    def app(self) -> Any:
        return create_app(self.container, extra_route_handlers=[self.controls()])

    def close(self) -> None:
        self._stop.set()
        self.container.storage().close()
        self.double.stop()


@contextmanager
def paddle_demo(port: int, double_port: int = 0, start: datetime | None = None) -> Iterator[Any]:
    """The demo's service on `port` in a thread (for tests); yields the running `PaddleDemo`."""
    with tempfile.TemporaryDirectory() as folder:
        demo = PaddleDemo(
            clock=ControllableClock(start),
            public_url=f"http://127.0.0.1:{port}",
            database_url=f"sqlite:///{Path(folder) / 'billing-paddle-demo.db'}",
            double_port=double_port,
        )
        server = uvicorn.Server(
            uvicorn.Config(demo.app(), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, name="paddle-demo-server", daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while not server.started:
                if time.monotonic() > deadline or not thread.is_alive():
                    raise RuntimeError("the demo server did not start")
                time.sleep(0.05)
            demo.pump()
            yield demo
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            demo.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="the service's port")
    parser.add_argument("--double-port", type=int, default=8001, help="the Paddle double's port")
    parser.add_argument(
        "--clock-start", default=None, help="ISO 8601 time the shared clock starts at (default now)"
    )
    args = parser.parse_args()
    start = datetime.fromisoformat(args.clock_start) if args.clock_start else None
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    with paddle_demo(args.port, args.double_port, start) as demo:
        print(f"ResponseIQ Billing on http://127.0.0.1:{args.port}  (gateway: paddle, the double)")
        print(f"  Paddle double on {demo.double.url}; BILLING_AUTH_SECRET={DEMO_AUTH_SECRET}")
        print("  Ctrl-C to stop", flush=True)
        with suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()

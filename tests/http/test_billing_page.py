"""The billing page at the HTTP edge: session entry, CSRF, security headers, sentences, no card fields."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from litestar.testing import TestClient

from responseiq_billing.adapters.app import create_app
from responseiq_billing.adapters.config import ConfigError, Settings
from responseiq_billing.adapters.container import Container
from responseiq_billing.adapters.fake.gateway import FakeGateway
from responseiq_billing.adapters.http import auth
from responseiq_billing.adapters.http.auth import issue_token
from responseiq_billing.adapters.http.page import messages
from responseiq_billing.adapters.http.page import session as page_session
from responseiq_billing.adapters.http.page.routes import content_security_policy
from responseiq_billing.adapters.http.page.session import SESSION_COOKIE, SessionSigner
from responseiq_billing.domain import errors as domain_errors
from responseiq_billing.domain.errors import BillingError
from tests.http.conftest import ENV, SECRET, bearer, subscribe

LOCAL = "http://127.0.0.1:8000"
ACCOUNT = "acct_page"
OTHER = "acct_page_other"
# Every form field the page ever sends: none of them could hold a card's details.
FORM_FIELDS = {"csrf_token", "request_id", "plan", "interval", "quote_id"}
ACTIONS: dict[str, dict[str, str]] = {
    "/billing/page/checkout": {"plan": "growth", "interval": "month"},
    "/billing/page/change": {"plan": "business", "interval": "month", "quote_id": "qt_x"},
    "/billing/page/withdraw-change": {},
    "/billing/page/cancel": {},
    "/billing/page/resume": {},
    "/billing/page/portal": {},
    "/billing/page/payment-method": {},
}


@pytest.fixture
def client(container: Container) -> Iterator[TestClient[Any]]:
    """The app as a browser on the developer's machine reaches it (plain http on 127.0.0.1)."""
    with TestClient(create_app(container), base_url=LOCAL) as test_client:
        yield test_client


def token(account: str = ACCOUNT, **claims: Any) -> str:
    return issue_token(SECRET, account, ttl=timedelta(minutes=5), **claims)


def enter(client: TestClient[Any], account: str = ACCOUNT) -> str:
    """Open the page as the host application's link does; returns the page's HTML."""
    opened = client.get(f"/billing/session?token={token(account)}")
    assert opened.status_code == 200, opened.text
    assert str(opened.url) == f"{LOCAL}/billing"
    return opened.text


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "the page has a form with its CSRF token"
    return found.group(1)


def text_of(html: str) -> str:
    main = html.split("<main", 1)[1].split("</main>", 1)[0]
    return " ".join(re.sub(r"<[^>]+>", " ", main).split())


def cookie_header(response: Any, name: str) -> str:
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(headers) == 1, response.headers.get_list("set-cookie")
    return str(headers[0])


def confirm(client: TestClient[Any], html: str, plan: str, interval: str = "month") -> str:
    """Preview a change on the page, then confirm it with the quote it showed."""
    shown = client.get(f"/billing/page/change?plan={plan}&interval={interval}")
    assert shown.status_code == 200, shown.text
    quote = re.search(r'name="quote_id" value="([^"]+)"', shown.text)
    assert quote is not None
    data = {"plan": plan, "interval": interval, "quote_id": quote.group(1)}
    done = client.post("/billing/page/change", data={**data, "csrf_token": csrf(shown.text)})
    assert done.status_code == 200, done.text
    return done.text


# -- entering with the host application's token ------------------------------------------------


def test_the_session_link_trades_the_token_for_a_cookie_and_drops_it_from_the_url(
    client: TestClient[Any],
) -> None:
    entered = client.get(f"/billing/session?token={token()}", follow_redirects=False)
    assert entered.status_code == 303
    assert entered.headers["location"] == "/billing"
    cookie = cookie_header(entered, SESSION_COOKIE)
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=lax", "path=/billing", "max-age=3600"} <= flags
    assert "secure" not in flags  # plain http on the developer's own machine
    assert entered.headers["referrer-policy"] == "no-referrer"

    shown = client.get("/billing")
    assert shown.status_code == 200
    assert "<h1>Billing</h1>" in shown.text
    assert "Choose a plan" in text_of(shown.text)


@pytest.mark.parametrize(
    ("host", "secure"),
    [("127.0.0.1", False), ("billing.example.com", True)],
)
def test_the_session_cookie_is_secure_everywhere_but_localhost(
    container: Container, host: str, secure: bool
) -> None:
    scheme = "https" if secure else "http"
    with TestClient(create_app(container), base_url=f"{scheme}://{host}") as client:
        entered = client.get(f"/billing/session?token={token()}", follow_redirects=False)
        flags = [p.strip().lower() for p in cookie_header(entered, SESSION_COOKIE).split(";")]
        assert ("secure" in flags) is secure
        assert client.get("/billing").status_code == 200


@pytest.mark.parametrize(
    ("host", "secure"),
    [
        ("127.0.0.1", False),
        ("localhost", False),
        ("[::1]", False),
        ("billing.example.com", True),
        ("127.0.0.1.example.com", True),
        (None, True),
    ],
)
def test_only_the_developers_own_machine_gets_a_cookie_without_secure(
    host: str | None, secure: bool
) -> None:
    assert page_session.secure_cookie_for(host) is secure


def _token_with(claims: dict[str, Any], secret: str = SECRET) -> str:
    import jwt

    return jwt.encode(claims, secret, algorithm="HS256")


BAD_LINKS = {
    "no token": ("", "This billing link is incomplete. Reopen Billing from the app."),
    "not a token": ("?token=not.a.jwt", "This billing link is not valid."),
    "wrong secret": (
        f"?token={issue_token('x' * 40, ACCOUNT, ttl=timedelta(minutes=5))}",
        "This billing link is not valid.",
    ),
    "expired": (
        "?token="
        + issue_token(
            SECRET, ACCOUNT, ttl=timedelta(minutes=5), now=datetime(2020, 1, 1, tzinfo=UTC)
        ),
        "This billing link has expired. Reopen Billing from the app.",
    ),
    "no exp": (f"?token={_token_with({'sub': ACCOUNT})}", "This billing link is not valid."),
}


@pytest.mark.parametrize(("query", "sentence"), BAD_LINKS.values(), ids=BAD_LINKS)
def test_a_bad_or_expired_link_is_a_sentence_and_opens_no_session(
    client: TestClient[Any], query: str, sentence: str
) -> None:
    refused = client.get(f"/billing/session{query}", follow_redirects=False)
    assert refused.status_code == 401
    assert sentence in text_of(refused.text)
    assert "auth." not in refused.text and "Traceback" not in refused.text
    assert SESSION_COOKIE not in refused.headers.get("set-cookie", "")
    assert client.get("/billing").status_code == 401


def test_the_page_without_a_session_says_to_open_it_from_the_app(client: TestClient[Any]) -> None:
    shown = client.get("/billing")
    assert shown.status_code == 401
    assert "Open Billing from the app to see this page." in text_of(shown.text)
    assert "page.session" not in shown.text


def test_an_expired_session_says_so_and_is_dropped(client: TestClient[Any]) -> None:
    _, stale = SessionSigner(SECRET).issue(ACCOUNT, now=datetime(2020, 1, 1, tzinfo=UTC))
    client.cookies.set(SESSION_COOKIE, stale, domain="127.0.0.1", path="/billing")
    shown = client.get("/billing")
    assert shown.status_code == 401
    assert "Your session has expired; reopen Billing from the app." in text_of(shown.text)
    assert 'billing_session=""' in cookie_header(shown, SESSION_COOKIE)
    assert client.post("/billing/page/cancel", data={}).status_code == 401


@pytest.mark.parametrize("forgery", ["other account", "other secret", "garbage"])
def test_a_forged_session_cookie_is_refused(client: TestClient[Any], forgery: str) -> None:
    now = datetime.now(UTC)
    signer = SessionSigner(SECRET)
    _, value = signer.issue(ACCOUNT, now=now)
    if forgery == "other account":
        # The victim's account in the body, the attacker's valid signature on another body.
        _, mine = signer.issue(OTHER, now=now)
        value = f"{value.split('.')[0]}.{mine.split('.')[1]}"
    elif forgery == "other secret":
        _, value = SessionSigner("y" * 40).issue(ACCOUNT, now=now)
    else:
        value = "not-a-session"
    client.cookies.set(SESSION_COOKIE, value, domain="127.0.0.1", path="/billing")
    shown = client.get("/billing")
    assert shown.status_code == 401
    assert "This session is not valid; reopen Billing from the app." in text_of(shown.text)


# -- CSRF -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", list(ACTIONS))
def test_every_form_posted_without_its_csrf_token_is_refused_before_anything_happens(
    client: TestClient[Any], fake: FakeGateway, path: str
) -> None:
    subscribe(client, ACCOUNT)
    page = enter(client)
    _, others = SessionSigner(SECRET).issue(OTHER, now=datetime.now(UTC))
    other_token = SessionSigner(SECRET).csrf_token(
        SessionSigner(SECRET).read(others, now=datetime.now(UTC))
    )
    calls = len(fake.calls)
    for sent in (
        {},
        {"csrf_token": ""},
        {"csrf_token": other_token},
        {"csrf_token": csrf(page)[:-2]},
    ):
        refused = client.post(path, data={**ACTIONS[path], **sent}, follow_redirects=False)
        assert refused.status_code == 403, (sent, refused.text)
        assert "This form did not come from your billing page" in text_of(refused.text)
    assert len(fake.calls) == calls, "no use case ran: the gateway was not called"
    sub = client.get("/billing/subscription", headers=bearer(ACCOUNT)).json()
    assert (sub["plan"], sub["cancel_at_period_end"]) == ("growth", False)


def test_the_json_api_with_a_bearer_token_needs_no_csrf_token(client: TestClient[Any]) -> None:
    subscribe(client, ACCOUNT)
    canceled = client.post("/billing/subscription/cancel", headers=bearer(ACCOUNT))
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["cancel_at_period_end"] is True


def test_a_form_with_its_token_acts_and_comes_back_with_a_focused_sentence(
    client: TestClient[Any],
) -> None:
    subscribe(client, ACCOUNT)
    page = enter(client)
    done = client.post(
        "/billing/page/cancel", data={"csrf_token": csrf(page)}, follow_redirects=False
    )
    assert (done.status_code, done.headers["location"]) == (303, "/billing")
    shown = client.get("/billing")
    assert re.search(
        r'<p id="status"[^>]*role="status"[^>]*data-focus>Your subscription is canceled', shown.text
    )
    assert "Access continues until 1 April 2026" in text_of(shown.text)
    again = client.get("/billing")
    assert 'id="status"' not in again.text, "a flash is shown once"


# -- headers -----------------------------------------------------------------------------------


def test_every_page_response_carries_the_security_headers(client: TestClient[Any]) -> None:
    responses = [
        client.get("/billing"),  # 401, no session
        client.get(f"/billing/session?token={token()}", follow_redirects=False),  # 303
        client.get("/billing"),  # 200
        client.get("/billing/page/change?plan=business&interval=month", follow_redirects=False),
        client.get("/billing/page/assets/billing.css"),
        client.get("/billing/page/assets/billing.js"),
        client.post("/billing/page/cancel", data={}),  # 403
    ]
    for response in responses:
        csp = response.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == "'self'"
        assert directives["form-action"] == f"'self' {LOCAL}"  # the sandbox: this service only
        assert directives["frame-ancestors"] == "'self'"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert (
        client.get("/billing/page/assets/billing.css")
        .headers["content-type"]
        .startswith("text/css")
    )


def test_frame_ancestors_come_from_the_setting(settings: Settings) -> None:
    framed = Settings.from_env({**ENV, "BILLING_FRAME_ANCESTORS": "'self' https://app.example.com"})
    assert "frame-ancestors 'self' https://app.example.com" in content_security_policy(framed)
    assert "frame-ancestors 'self'" in content_security_policy(settings)


@pytest.mark.parametrize(
    "value",
    [
        "https://app.example.com; script-src *",
        "'unsafe-inline'",
        "'none' 'self'",
        "javascript:alert(1)",
        "https://app.example.com,https://other.example.com",
    ],
)
def test_a_frame_ancestors_setting_that_could_break_the_policy_stops_start_up(value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({**ENV, "BILLING_FRAME_ANCESTORS": value})
    assert raised.value.setting == "BILLING_FRAME_ANCESTORS"


def test_in_stripe_mode_forms_may_lead_to_stripes_pages_and_no_stripe_script_runs() -> None:
    stripe = Settings.from_env(
        {
            "BILLING_GATEWAY": "stripe",
            "STRIPE_API_KEY": "sk_test_page",
            "BILLING_AUTH_SECRET": SECRET,
            "BILLING_PUBLIC_URL": "https://billing.example.com",
        }
    )
    csp = content_security_policy(stripe)
    assert "form-action 'self' https://checkout.stripe.com https://billing.stripe.com" in csp
    assert "script-src 'self';" in csp and "stripe" not in csp.split("form-action")[0]


# -- what the page shows ------------------------------------------------------------------------


class _Fields(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: list[dict[str, str | None]] = []
        self.assets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("input", "select", "textarea", "iframe", "embed", "object"):
            self.fields.append({"tag": tag, **found})
        if tag in ("script", "img") and found.get("src"):
            self.assets.append(found["src"] or "")
        if tag == "link":
            self.assets.append(found.get("href") or "")


def assert_no_card_inputs(html: str, state: str) -> None:
    parsed = _Fields()
    parsed.feed(html)
    for field in parsed.fields:
        assert field["tag"] == "input" and field.get("type") == "hidden", (state, field)
        assert field.get("name") in FORM_FIELDS, (state, field)
        assert not (field.get("autocomplete") or "").startswith("cc-"), (state, field)
    assert parsed.assets and all(a.startswith("/billing/page/assets/") for a in parsed.assets), (
        state,
        parsed.assets,
    )


def test_no_input_in_any_state_of_the_page_can_take_a_card_number(
    client: TestClient[Any], container: Container, fake: FakeGateway
) -> None:
    states: dict[str, str] = {"no session": client.get("/billing").text}
    states["no subscription"] = enter(client)
    subscribe(client, ACCOUNT)
    states["active"] = client.get("/billing").text
    states["upgrade preview"] = client.get("/billing/page/change?plan=business&interval=month").text
    states["downgrade preview"] = client.get(
        "/billing/page/change?plan=starter&interval=month"
    ).text
    states["downgrade scheduled"] = confirm(client, states["active"], "starter")
    states["nothing to undo"] = client.post(
        "/billing/page/resume", data={"csrf_token": csrf(states["active"])}
    ).text
    states["csrf refused"] = client.post("/billing/page/cancel", data={}).text
    client.post("/billing/page/cancel", data={"csrf_token": csrf(states["active"])})
    states["canceling"] = client.get("/billing").text
    fake.advance(timedelta(days=32))
    states["ended"] = client.get("/billing").text
    for state, html in states.items():
        assert_no_card_inputs(html, state)
    assert "Downgrade scheduled" in text_of(states["downgrade scheduled"])
    assert "Subscription canceled" in text_of(states["canceling"])
    assert "Your subscription has ended" in text_of(states["ended"])


def test_the_card_statement_says_where_card_details_go(client: TestClient[Any]) -> None:
    html = enter(client)
    footer = html.split("<footer", 1)[1]
    assert "never reach ResponseIQ" in footer
    assert "You pay on the payment provider's secure checkout page" in text_of(html)


def _all_errors() -> list[type[BillingError]]:
    found: list[type[BillingError]] = []
    pending: list[type[BillingError]] = [BillingError]
    while pending:
        error = pending.pop()
        found.append(error)
        pending.extend(error.__subclasses__())
    return found


def test_every_error_code_has_a_sentence_a_customer_understands() -> None:
    assert domain_errors and auth and page_session  # every module that defines errors is loaded
    codes = {error.code for error in _all_errors()}
    assert codes - set(messages.PROBLEMS) == set()
    for code, sentence in messages.PROBLEMS.items():
        assert sentence.endswith("."), code
        assert not re.search(r"\b[a-z_]+\.[a-z_]+\b", sentence), (code, sentence)  # no codes


def test_a_refused_action_comes_back_as_a_sentence_never_a_code(
    client: TestClient[Any], fake: FakeGateway
) -> None:
    subscribe(client, ACCOUNT)
    page = enter(client)
    undone = client.post("/billing/page/withdraw-change", data={"csrf_token": csrf(page)})
    assert undone.status_code == 200
    assert re.search(
        r'role="alert"[^>]*data-focus>There is no scheduled change to undo', undone.text
    )
    assert "plan_change" not in undone.text

    fake.decline_next_payment()
    declined = confirm(client, page, "business")
    assert (
        "Your card was declined, so nothing was charged and your plan did not change."
        in text_of(declined)
    )
    assert "payment.declined" not in declined and "402" not in text_of(declined)
    assert client.get("/billing/subscription", headers=bearer(ACCOUNT)).json()["plan"] == "growth"

    odd = client.get("/billing/page/change?plan=business&interval=fortnight")
    assert "That request was not understood, so nothing was changed." in text_of(odd.text)


def test_a_flash_belongs_to_the_session_it_was_made_for() -> None:
    signer = SessionSigner(SECRET)
    now = datetime.now(UTC)
    mine, _ = signer.issue(ACCOUNT, now=now)
    theirs, _ = signer.issue(OTHER, now=now)
    flash = signer.flash(mine, "done:canceled", now=now)
    assert signer.read_flash(mine, flash, now=now) == "done:canceled"
    assert signer.read_flash(theirs, flash, now=now) is None
    assert signer.read_flash(mine, flash.replace("canceled", "resumed"), now=now) is None
    assert signer.read_flash(mine, flash, now=now + timedelta(hours=1)) is None
    assert messages.from_flash("done:not-a-message") is None


def test_another_accounts_invoice_and_checkout_are_not_found_from_the_page(
    client: TestClient[Any],
) -> None:
    checkout_id = subscribe(client, ACCOUNT)
    invoice_id = client.get("/billing/invoices", headers=bearer(ACCOUNT)).json()["data"][0]["id"]
    enter(client, OTHER)
    pdf = client.get(f"/billing/page/invoices/{invoice_id}/pdf", follow_redirects=False)
    assert (pdf.status_code, pdf.headers["location"]) == (303, "/billing")
    assert "We could not find that invoice" in text_of(client.get("/billing").text)
    back = client.get(f"/billing/page/checkout/return?checkout_id={checkout_id}")
    assert "We could not find that checkout" in text_of(back.text)
    assert "Choose a plan" in text_of(back.text)
    assert client.get("/billing/subscription", headers=bearer(OTHER)).status_code == 404


def test_an_upgrade_the_bank_must_confirm_goes_to_the_gateways_confirmation_page(
    client: TestClient[Any], fake: FakeGateway
) -> None:
    subscribe(client, ACCOUNT)
    page = enter(client)
    shown = client.get("/billing/page/change?plan=business&interval=month")
    quote = re.search(r'name="quote_id" value="([^"]+)"', shown.text)
    assert quote is not None
    fake.require_action_next_payment()
    sent = client.post(
        "/billing/page/change",
        data={
            "plan": "business",
            "interval": "month",
            "quote_id": quote.group(1),
            "csrf_token": csrf(page),
        },
        follow_redirects=False,
    )
    assert sent.status_code == 303
    where = sent.headers["location"].removeprefix("http://127.0.0.1:8000")
    assert where.startswith("/sandbox/authenticate/")
    assert client.get("/billing/subscription", headers=bearer(ACCOUNT)).json()["plan"] == "growth"
    assert client.post(where, follow_redirects=False).status_code == 303  # confirmed at the bank
    assert client.get("/billing/subscription", headers=bearer(ACCOUNT)).json()["plan"] == "business"

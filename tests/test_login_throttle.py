"""Failed logins are throttled (django-axes): after five wrong passwords a user name is locked out from that
address, even with the right password, with a clear page; others are not; `manage.py axes_reset` unlocks."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client, RequestFactory
from django.urls import reverse

from config.security import client_ip
from tests.factories import user_create

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Dozens of logins per test: the production hasher's million rounds would dominate the run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def login(client: Client, username: str, password: str, **extra):
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def fail_five_times(client: Client, username: str, **extra) -> None:
    for attempt in range(5):
        response = login(client, username, "wrong", **extra)
        assert not logged_in(client)
        # The fifth failure reaches the limit: that answer is already the lockout page.
        assert response.status_code == (429 if attempt == 4 else 200)


def assert_lockout_page(response) -> None:
    html = response.content.decode()
    assert response.status_code == 429
    assert "Too many failed logins for this user name from your address" in html
    assert "Try again in 15 minutes" in html
    assert 'class="site-header"' in html and "site.css" in html  # the site's own layout


def test_five_wrong_passwords_lock_the_user_out_even_with_the_right_one(client):
    user_create(username="alice")
    fail_five_times(client, "alice")
    response = login(client, "alice", "pw")
    assert_lockout_page(response)
    assert not logged_in(client)


def test_another_user_from_the_same_address_is_not_locked(client):
    user_create(username="alice")
    user_create(username="bob")
    fail_five_times(client, "alice")
    response = login(client, "bob", "pw")
    assert response.status_code == 302 and logged_in(client)


def test_the_same_user_from_another_address_is_not_locked():
    user_create(username="alice")
    fail_five_times(Client(REMOTE_ADDR="10.0.0.1"), "alice")
    elsewhere = Client(REMOTE_ADDR="10.0.0.2")
    assert login(elsewhere, "alice", "pw").status_code == 302 and logged_in(elsewhere)


def test_axes_reset_unlocks(client):
    user_create(username="alice")
    fail_five_times(client, "alice")
    assert login(client, "alice", "pw").status_code == 429
    call_command("axes_reset")
    assert login(client, "alice", "pw").status_code == 302 and logged_in(client)


def test_a_success_forgets_earlier_failures(client):
    user_create(username="alice")
    for _ in range(4):
        login(client, "alice", "wrong")
    assert login(client, "alice", "pw").status_code == 302
    client.logout()
    for _ in range(4):
        assert login(client, "alice", "wrong").status_code == 200
    assert login(client, "alice", "pw").status_code == 302


def test_lockout_answer_is_json_for_a_json_client(client):
    user_create(username="alice")
    fail_five_times(client, "alice")
    response = login(client, "alice", "pw", headers={"Accept": "application/json"})
    assert response.status_code == 429 and "Too many failed logins" in response.json()["error"]


def test_a_forged_forwarded_header_does_not_escape_the_lock(client):
    """Without a trusted proxy, X-Forwarded-For is the client's own text: it changes nothing."""
    user_create(username="alice")
    fail_five_times(client, "alice", HTTP_X_FORWARDED_FOR="203.0.113.1")
    assert login(client, "alice", "pw", HTTP_X_FORWARDED_FOR="203.0.113.99").status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(client, settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1/32"]
    user_create(username="alice")
    fail_five_times(client, "alice", HTTP_X_FORWARDED_FOR="203.0.113.1")
    assert login(client, "alice", "pw", HTTP_X_FORWARDED_FOR="203.0.113.1").status_code == 429
    assert login(client, "alice", "pw", HTTP_X_FORWARDED_FOR="203.0.113.2").status_code == 302


@pytest.mark.parametrize(
    ("remote", "forwarded", "trusted", "expected"),
    [
        ("192.0.2.7", "", [], "192.0.2.7"),
        ("192.0.2.7", "203.0.113.5", [], "192.0.2.7"),  # not behind a trusted proxy: the header is ignored
        ("127.0.0.1", "203.0.113.5", ["127.0.0.1/32"], "203.0.113.5"),
        # The right-most untrusted entry: whatever the client wrote at the left is not believed.
        ("127.0.0.1", "198.51.100.9, 203.0.113.5", ["127.0.0.1/32"], "203.0.113.5"),
        ("127.0.0.1", "198.51.100.9, 203.0.113.5, 10.1.2.3", ["127.0.0.1/32", "10.0.0.0/8"], "203.0.113.5"),
        ("127.0.0.1", "nonsense", ["127.0.0.1/32"], "127.0.0.1"),
        ("127.0.0.1", "198.51.100.9, nonsense", ["127.0.0.1/32"], "127.0.0.1"),
        ("::1", "2001:db8::5", ["::1/128"], "2001:db8::5"),
        ("garbage", "", [], None),
    ],
)
def test_client_address_rule(settings, remote, forwarded, trusted, expected):
    settings.TRUSTED_PROXIES = trusted
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_login_page_still_logs_in_and_out(client):
    user_create(username="alice")
    assert login(client, "alice", "pw")["Location"] == reverse("leaderboard:index")
    assert client.get(reverse("leaderboard:index")).status_code == 200

"""Password guessing is throttled: wrong passwords lock a username for one address for a while, and the page says until when."""
from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import RequestFactory
from django.utils import timezone

from voiceapp.client_ip import client_ip

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"
HERE, ELSEWHERE = "203.0.113.5", "198.51.100.7"


@pytest.fixture(autouse=True)
def quick_hashing(settings):
    """A fast password hasher: these tests sign in dozens of times, and the real one is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def ada(django_user_model):
    """A user whose password guessers try."""
    return django_user_model.objects.create_user(username="ada", password=PASSWORD)


def sign_in(client, username: str, password: str, address: str = HERE, **headers):
    """Post the login form as a browser at `address` would."""
    return client.post("/accounts/login/", {"username": username, "password": password},
                       REMOTE_ADDR=address, **headers)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def lock(client, username: str = "ada", address: str = HERE):
    """Five wrong passwords; returns the answer to the fifth."""
    for _ in range(4):
        response = sign_in(client, username, "wrong guess", address)
        assert response.status_code == 200  # the login form again, with its error
    return sign_in(client, username, "wrong guess", address)


def pass_the_cool_off():
    """Move every recorded failure 15 minutes and a second into the past."""
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=15, seconds=1))


def test_five_wrong_passwords_lock_the_account_for_that_address_with_the_time_to_try_again(client, ada):
    before = timezone.now()
    response = lock(client)
    assert response.status_code == 429
    assert int(response["Retry-After"]) == 15 * 60
    page = response.content.decode()
    assert "too many wrong passwords" in page and "Try again in 15 minutes" in page
    retry_at = response.context["retry_at"]
    assert timedelta(minutes=15) <= retry_at - before < timedelta(minutes=15, seconds=30)
    assert timezone.localtime(retry_at).strftime("%H:%M") in page


def test_the_right_password_is_refused_until_the_cool_off_has_passed(client, ada):
    lock(client)
    response = sign_in(client, "ada", PASSWORD)
    assert response.status_code == 429 and not signed_in(client)
    pass_the_cool_off()
    response = sign_in(client, "ada", PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_another_username_and_another_address_are_unaffected(client, ada, django_user_model):
    django_user_model.objects.create_user(username="grace", password=PASSWORD)
    lock(client)
    assert sign_in(client, "grace", PASSWORD).status_code == 302  # another account, same address
    client.logout()
    assert sign_in(client, "ada", PASSWORD, ELSEWHERE).status_code == 302  # the same account elsewhere


def test_signing_in_clears_the_count_of_wrong_passwords(client, ada):
    for _ in range(4):
        sign_in(client, "ada", "wrong guess")
    assert sign_in(client, "ada", PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        assert sign_in(client, "ada", "wrong guess").status_code == 200  # 8 in all, but only 4 since the success
    assert sign_in(client, "ada", PASSWORD).status_code == 302


def test_wrong_passwords_are_not_stored(client, ada):
    lock(client)
    assert "wrong guess" not in "".join(AccessAttempt.objects.values_list("post_data", flat=True))


def test_the_lockout_page_speaks_the_visitors_language(client, ada):
    for _ in range(4):
        sign_in(client, "ada", "wrong guess", HTTP_ACCEPT_LANGUAGE="es")
    response = sign_in(client, "ada", "wrong guess", HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 429
    assert "Vuelve a intentarlo dentro de 15 minutos" in response.content.decode()


def test_a_forwarded_address_is_ignored_unless_proxies_are_configured(client, ada, settings):
    """Without TRUSTED_PROXY_COUNT a guesser cannot dodge the lockout by writing a new X-Forwarded-For each time."""
    for n in range(5):
        sign_in(client, "ada", "wrong guess", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    assert sign_in(client, "ada", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429


def test_behind_a_configured_proxy_each_visitor_is_counted_by_the_address_the_proxy_saw(client, ada, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.2"
    for _ in range(5):
        sign_in(client, "ada", "wrong guess", proxy, HTTP_X_FORWARDED_FOR=f"spoofed, {HERE}")
    assert sign_in(client, "ada", PASSWORD, proxy, HTTP_X_FORWARDED_FOR=HERE).status_code == 429
    # Another visitor through the same proxy still signs in.
    assert sign_in(client, "ada", PASSWORD, proxy, HTTP_X_FORWARDED_FOR=ELSEWHERE).status_code == 302


@pytest.mark.parametrize(
    "proxies, forwarded, expected",
    [
        (0, "192.0.2.1", "10.0.0.2"),  # not configured: the header is the client's to write
        (1, "192.0.2.1", "192.0.2.1"),
        (1, "6.6.6.6, 192.0.2.1", "192.0.2.1"),  # what the client wrote before the proxy's entry is ignored
        (2, "192.0.2.1, 10.0.0.1", "192.0.2.1"),
        (2, "10.0.0.1", "10.0.0.2"),  # fewer entries than proxies: not through them all
        (1, "", "10.0.0.2"),
        (1, "not-an-address", "10.0.0.2"),
        (1, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_the_client_address_trusts_x_forwarded_for_only_as_far_as_the_configured_proxies(
    settings, proxies, forwarded, expected
):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected

"""Pages require login; sign-up follows its setting; the simulator banner shows when it answers."""
import pytest

pytestmark = pytest.mark.django_db


def test_the_talk_page_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")


def test_the_talk_page_renders_for_a_logged_in_user(client, user):
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    assert response.context["ws_path"] == "/ws/talk/"


def test_every_page_says_when_the_simulator_answers(client, user, settings):
    settings.REALTIME_SIMULATED = True
    client.force_login(user)
    assert b"simulator" in client.get("/").content.lower()
    settings.REALTIME_SIMULATED = False
    assert b"offline simulator" not in client.get("/").content.lower()


def test_the_login_page_is_public(client):
    assert client.get("/accounts/login/").status_code == 200


def test_signup_is_off_by_default(client, settings):
    settings.SIGNUP_ENABLED = False
    assert client.get("/accounts/signup/").status_code == 404


def test_signup_creates_an_account_and_logs_in(client, settings, django_user_model):
    settings.SIGNUP_ENABLED = True
    response = client.post(
        "/accounts/signup/",
        {"username": "grace", "password1": "a-long-unusual-passphrase", "password2": "a-long-unusual-passphrase"},
    )
    assert response.status_code == 302 and response.url == "/"
    assert django_user_model.objects.filter(username="grace").exists()
    assert client.get("/").status_code == 200


def test_signup_with_mismatched_passwords_shows_the_error(client, settings, django_user_model):
    settings.SIGNUP_ENABLED = True
    response = client.post("/accounts/signup/", {"username": "x", "password1": "a-long-unusual-passphrase", "password2": "nope"})
    assert response.status_code == 200
    assert response.context["form"].errors
    assert not django_user_model.objects.filter(username="x").exists()


def test_logout_is_a_post_and_ends_the_session(client, user):
    client.force_login(user)
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_bootstrap_admin_prints_a_password_once(capsys, django_user_model):
    from django.core.management import call_command

    call_command("bootstrap_admin")
    first = capsys.readouterr().out
    assert "password:" in first
    assert django_user_model.objects.get(username="admin").is_superuser
    call_command("bootstrap_admin")
    assert "password:" not in capsys.readouterr().out

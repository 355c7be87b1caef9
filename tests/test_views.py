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


def _stored_conversation(user, turns):
    """A stored conversation of `user` with (role, text, interrupted) turns."""
    from conversations.models import Conversation, Turn

    conversation = Conversation.objects.create(user=user, provider="simulator", deployment="gpt-realtime", dialect="ga")
    for position, (role, text, interrupted) in enumerate(turns):
        Turn.objects.create(
            conversation=conversation, role=role, position=position, item_id=f"item_{position}",
            response_id=f"resp_{position}" if role == "assistant" else "", text=text, interrupted=interrupted,
        )
    return conversation, None


def test_the_talk_page_shows_a_stored_conversation_in_order_to_continue_it(client, user):
    conversation, usage = _stored_conversation(
        user, [("assistant", "Second <b>answer</b>", True), ("user", "First question", False)]
    )
    # Positions, not insertion order, decide the order: swap them.
    from conversations.models import Turn

    Turn.objects.filter(conversation=conversation, position=0).update(position=5)
    client.force_login(user)
    response = client.get(f"/?conversation={conversation.pk}")
    assert response.status_code == 200
    body = response.content.decode()
    assert f'data-conversation-id="{conversation.pk}"' in body
    assert body.index("First question") < body.index("Second &lt;b&gt;answer&lt;/b&gt;")
    assert "<b>answer</b>" not in body  # model text is escaped
    assert 'class="bubble done interrupted' in body
    assert "Press Start to continue it" in body


def test_stored_turns_that_did_not_come_out_whole_say_so(client, user):
    from conversations.models import Turn

    conversation, _ = _stored_conversation(
        user, [("user", "", False), ("assistant", "Well, first", False), ("assistant", "", False)]
    )
    Turn.objects.filter(conversation=conversation, position=0).update(status="transcription_failed")
    Turn.objects.filter(conversation=conversation, position=1).update(status="incomplete", status_reason="max_output_tokens")
    Turn.objects.filter(conversation=conversation, position=2).update(status="failed")
    client.force_login(user)
    body = client.get(f"/?conversation={conversation.pk}").content.decode()
    assert "(could not be transcribed)" in body and "transcript-failed" in body
    assert "(cut short: the answer reached its length limit)" in body
    assert "(this answer failed)" in body


def test_the_talk_page_without_a_conversation_starts_fresh(client, user):
    client.force_login(user)
    response = client.get("/")
    assert response.context["conversation_id"] == "" and response.context["turns"] == []
    assert "continue-line" not in response.content.decode()


@pytest.mark.parametrize("conversation", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "1; drop table"])
def test_an_unknown_or_malformed_conversation_is_not_found(client, user, conversation):
    client.force_login(user)
    assert client.get("/", {"conversation": conversation}).status_code == 404


def test_another_users_conversation_is_not_found(client, user, django_user_model):
    other = django_user_model.objects.create_user(username="eve", password="another long password")
    conversation, _ = _stored_conversation(other, [("user", "Eve's secret", False)])
    client.force_login(user)
    response = client.get(f"/?conversation={conversation.pk}")
    assert response.status_code == 404
    assert b"Eve's secret" not in response.content


def test_selectors_return_only_the_owners_turns_in_position_order(user, django_user_model):
    from conversations import selectors

    conversation, _ = _stored_conversation(user, [("user", "a", False), ("assistant", "b", False), ("user", "c", False)])
    other = django_user_model.objects.create_user(username="eve", password="another long password")
    assert selectors.conversation_for(user=user, conversation_id=str(conversation.pk)) == conversation
    assert selectors.conversation_for(user=other, conversation_id=str(conversation.pk)) is None
    assert selectors.conversation_for(user=user, conversation_id="nope") is None
    assert [t.text for t in selectors.turns_of(conversation=conversation)] == ["a", "b", "c"]

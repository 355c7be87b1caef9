"""The staff usage dashboard, its CSV and drill-down, and each user's own month: who sees what, and the figures."""
from __future__ import annotations

import csv
import datetime
import io
import json
import re
from decimal import Decimal

import pytest
from django.db.models import Count, Q, Sum
from django.urls import reverse

from conversations import selectors_usage, views_usage
from conversations.models import Conversation, Turn, Usage
from conversations.selectors_usage import DayRange

from .usage_seed import FIRST, LAST, ZONE, Seed, local, seed

pytestmark = pytest.mark.django_db
RANGE = {"from": FIRST.isoformat(), "to": LAST.isoformat()}
DASHBOARD = reverse("conversations:staff_usage")
CSV = reverse("conversations:staff_usage_csv")


@pytest.fixture
def seeded(settings, django_user_model) -> Seed:
    settings.TIME_ZONE = ZONE
    return seed(django_user_model)


@pytest.fixture
def staff(client, seeded):
    client.force_login(seeded.users["boss"])
    return client


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def orm_sums(**where) -> dict:
    """The same figures straight from the ORM, one aggregate per table over the range's instants."""
    first, after = local(1, 0), local(8, 0)
    usage = Usage.objects.filter(created_at__gte=first, created_at__lt=after, **where).aggregate(
        total_tokens=Sum("total_tokens"), input_cached_tokens=Sum("input_cached_tokens"), cost=Sum("cost"),
        unpriced=Count("pk", filter=Q(priced=False)))
    turns = {"user_ms": Sum("audio_ms", filter=Q(role="user")), "assistant_ms": Sum("audio_ms", filter=Q(role="assistant"))}
    turns = Turn.objects.filter(created_at__gte=first, created_at__lt=after, **where).aggregate(**turns)
    conversation_where = {k.removeprefix("conversation__"): v for k, v in where.items()}
    count = Conversation.objects.filter(started_at__gte=first, started_at__lt=after, **conversation_where).count()
    return {**usage, **turns, "conversations": count}


def test_anonymous_visitors_are_sent_to_log_in(client, seeded):
    for url in (DASHBOARD, CSV, reverse("conversations:staff_usage_user", args=[seeded.users["ada"].pk]),
                reverse("conversations:staff_usage_conversation", args=[seeded.by_title["Night owl"].pk]),
                reverse("conversations:my_usage")):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url


def test_signed_in_users_who_are_not_staff_get_403_everywhere_on_the_dashboard(client, seeded):
    client.force_login(seeded.users["ada"])
    for url in (DASHBOARD, CSV, reverse("conversations:staff_usage_user", args=[seeded.users["bob"].pk]),
                reverse("conversations:staff_usage_conversation", args=[seeded.by_title["Night owl"].pk])):
        assert client.get(url).status_code == 403, url
    assert 'href="/staff/usage/"' not in text(client.get("/history/"))


def test_staff_find_the_dashboard_in_the_header(staff):
    body = text(staff.get("/history/"))
    assert '<a href="/staff/usage/">Usage</a>' in body
    assert 'href="/staff/usage/" aria-current="page"' in text(staff.get(DASHBOARD))


def test_the_dashboard_shows_the_ledgers_sums_for_the_range(staff, seeded, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):  # session, user, then the report's ten
        response = staff.get(DASHBOARD, RANGE)
    assert response.status_code == 200
    report = response.context["report"]
    sums = orm_sums()
    assert (report.totals.total_tokens, report.totals.input_cached_tokens, report.totals.cost, report.totals.unpriced) == (
        sums["total_tokens"], sums["input_cached_tokens"], sums["cost"], sums["unpriced"])
    assert (report.totals.user_ms, report.totals.assistant_ms, report.totals.conversations) == (
        sums["user_ms"], sums["assistant_ms"], sums["conversations"])
    body = text(response)
    assert '<dd class="cost">$1.417900 <span class="hint">(some usage had no price)</span> ' \
           '<span class="hint">(includes estimates)</span></dd>' in body
    assert "<dt>Minutes of user audio</dt><dd>1.79</dd>" in body
    # Both tables are there with captions and header cells, a row per day and per user.
    assert body.count("<caption>") == 2 and '<th scope="col">Cached in</th>' in body
    assert len(re.findall(r'<tr><th scope="row"><time datetime="2026-03-0\d">', body)) == 7
    ada = seeded.users["ada"].pk
    assert f'<a href="/staff/usage/users/{ada}/?from=2026-03-01&amp;to=2026-03-07">ada</a>' in body


def test_the_charts_get_their_figures_as_json_in_a_script_element(staff, seeded):
    seeded.users["bob"].username = "</script><b>bob"
    seeded.users["bob"].save()
    body = staff.get(DASHBOARD, RANGE).content.decode()
    raw = re.search(r'<script id="usage-data" type="application/json">(.*?)</script>', body, re.S).group(1)
    assert "<b>" not in raw  # json_script escapes what could close the element or start markup
    data = json.loads(raw)
    assert [d["day"] for d in data["days"]] == [(FIRST + datetime.timedelta(days=n)).isoformat() for n in range(7)]
    assert data["days"][0] == {"day": "2026-03-01", "input": 807, "cached": 100, "output": 1500, "cost": "1.234567",
                               "userMs": 60_000, "assistantMs": 61_000}
    assert data["days"][2]["output"] == 0 and data["days"][2]["cost"] == "0.000000"
    assert [u["name"] for u in data["users"]] == ["</script><b>bob", "ada", "dee"]
    assert 'src="/static/vendor/chartjs/chart.umd.min.js"' in body and 'src="/static/js/pages/usage.js"' in body


def test_the_range_defaults_to_the_last_thirty_days(staff, monkeypatch):
    monkeypatch.setattr(selectors_usage, "site_today", lambda: datetime.date(2026, 3, 14))
    response = staff.get(DASHBOARD)
    assert response.context["report"].days_range == DayRange(datetime.date(2026, 2, 13), datetime.date(2026, 3, 14))
    assert len(response.context["report"].days) == 30
    assert 'value="2026-02-13"' in text(response) and 'value="2026-03-14"' in text(response)
    # Only an end: the 30 days before it.
    response = staff.get(DASHBOARD, {"to": "2026-01-31"})
    assert response.context["report"].days_range == DayRange(datetime.date(2026, 1, 2), datetime.date(2026, 1, 31))


@pytest.mark.parametrize("query,message", [
    ({"from": "2026-13-01"}, "Enter a date as YYYY-MM-DD."),
    ({"from": "2026-03-07", "to": "2026-03-01"}, "The start date is after the end date."),
    ({"from": "2024-01-01", "to": "2026-01-01"}, "Choose at most 366 days."),
])
def test_a_bad_range_is_a_clear_form_error(staff, query, message):
    response = staff.get(DASHBOARD, query)
    assert response.status_code == 400 and message in text(response)
    assert "report" not in response.context and 'id="usage-data"' not in text(response)
    response = staff.get(CSV, query)
    assert response.status_code == 400 and message in response.content.decode()


def test_the_csv_holds_exactly_the_figures_of_the_page(staff, seeded):
    page = staff.get(DASHBOARD, RANGE).context["report"]
    response = staff.get(CSV, RANGE)
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="usage-2026-03-01-2026-03-07.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(rows[0]) == list(views_usage.CSV_HEADER)

    def figures(row: dict) -> dict:
        return {name: row[name] for name in views_usage.CSV_FIGURES}

    def shown(f) -> dict:
        return {name: str(getattr(f, name)) for name in views_usage.CSV_FIGURES}

    assert [r["section"] for r in rows] == ["total"] + ["day"] * 7 + ["user"] * 3
    assert figures(rows[0]) == shown(page.totals)
    assert [(r["day"], figures(r)) for r in rows[1:8]] == [(d.day.isoformat(), shown(d.figures)) for d in page.days]
    assert [(int(r["user_id"]), r["username"], figures(r)) for r in rows[8:]] == [
        (u.user_id, u.username, shown(u.figures)) for u in page.users]

    # And against the ledger itself, with the page's rounding of minutes.
    sums = orm_sums()
    total = rows[0]
    assert Decimal(total["cost"]) == sums["cost"] and total["cost"] == "1.417900"
    assert int(total["total_tokens"]) == sums["total_tokens"]
    assert Decimal(total["user_minutes"]) == (Decimal(sums["user_ms"]) / 60000).quantize(Decimal("0.01"))
    assert int(total["conversations"]) == sums["conversations"] and int(total["unpriced"]) == sums["unpriced"]
    for row in rows[8:]:
        user_sums = orm_sums(conversation__user_id=int(row["user_id"]))
        assert Decimal(row["cost"]) == (user_sums["cost"] or 0) and int(row["conversations"]) == user_sums["conversations"]
    assert sum(Decimal(r["cost"]) for r in rows[1:8]) == Decimal(total["cost"])


def test_a_username_a_spreadsheet_would_run_is_quoted_in_the_csv(staff, seeded):
    seeded.users["bob"].username = "=1+2"
    seeded.users["bob"].save()
    rows = list(csv.DictReader(io.StringIO(staff.get(CSV, RANGE).content.decode())))
    assert [r["username"] for r in rows if r["section"] == "user"][0] == "'=1+2"


def test_a_user_row_leads_to_their_conversations_and_a_read_only_transcript(staff, seeded):
    ada = seeded.users["ada"]
    response = staff.get(reverse("conversations:staff_usage_user", args=[ada.pk]), RANGE)
    assert response.status_code == 200
    body = text(response)
    trip = seeded.by_title["Planning a trip"]
    assert f'<a href="/staff/usage/conversations/{trip.pk}/">Planning a trip</a>' in body
    assert "<td>0.71</td> <td>1.08</td> <td>4460</td> <td class=\"cost\">$0.183333 <span class=\"hint\">(includes estimates)" in body
    assert "Night owl" not in body  # bob's
    assert response.context["report"].totals.cost == Decimal("0.183333")

    response = staff.get(reverse("conversations:staff_usage_conversation", args=[trip.pk]))
    assert response.status_code == 200
    body = text(response)
    assert "A conversation of ada, read-only." in body and "user 0" in body and "assistant 1" in body
    for owner_action in ("Continue", "Rename", "Delete", "Export", "recording.mp3", "<form method=\"post\" action=\"/history"):
        assert owner_action not in body, owner_action


def test_unknown_users_and_conversations_are_404_for_staff(staff):
    assert staff.get(reverse("conversations:staff_usage_user", args=[999_999])).status_code == 404
    assert staff.get("/staff/usage/conversations/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_each_user_sees_their_own_usage_this_month_per_day(client, seeded, monkeypatch, django_assert_max_num_queries):
    monkeypatch.setattr(selectors_usage, "site_today", lambda: datetime.date(2026, 3, 7))
    client.force_login(seeded.users["ada"])
    assert 'href="/account/usage/"' in text(client.get(reverse("conversations:settings")))
    with django_assert_max_num_queries(8):
        response = client.get(reverse("conversations:my_usage"))
    assert response.status_code == 200
    report = response.context["report"]
    assert report.days_range == DayRange(datetime.date(2026, 3, 1), datetime.date(2026, 3, 7)) and report.users == []
    sums = orm_sums(conversation__user_id=seeded.users["ada"].pk)
    assert (report.totals.cost, report.totals.total_tokens, report.totals.user_ms) == (
        sums["cost"], sums["total_tokens"], sums["user_ms"])
    body = text(response)
    assert "bob" not in body and "Night owl" not in body
    assert len(re.findall(r'<tr><th scope="row"><time datetime="2026-03-0\d">', body)) == 7
    assert "<td>1</td> <td>0.50</td> <td>0.75</td>" in body  # the 2nd: one conversation, 30 s and 45 s

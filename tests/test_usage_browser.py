"""In a real Chromium: the staff usage dashboard draws both charts from the seeded ledger, with the tables under them."""
from __future__ import annotations

from urllib.parse import quote

import pytest

from .browser_support import ARTIFACTS, CHROMIUM, app_server, browser_available, chromium_args, database_url
from .usage_seed import ZONE, seed

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not browser_available(), reason="needs chromium, espeak-ng and sox (bash .ci/run installs them)"),
]


@pytest.fixture
def seeded_site(settings, django_user_model):
    """The seeded ledger in the test database, and the app served on it in the same time zone."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("browser tests share the database with a server process: PostgreSQL only")
    settings.TIME_ZONE = ZONE
    seeded = seed(django_user_model)
    with app_server({"DATABASE_URL": database_url(connection.settings_dict), "TIME_ZONE": ZONE}) as url:
        yield seeded, url


def test_the_dashboard_draws_tokens_per_day_and_cost_per_user_over_its_tables(seeded_site):
    from playwright.sync_api import sync_playwright

    _, url = seeded_site
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(None))
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.goto(f"{url}/accounts/login/?next=" + quote("/staff/usage/?from=2026-03-01&to=2026-03-07"))
            page.fill("#id_username", "boss")
            page.fill("#id_password", "pw-boss")
            page.click("#login-form [type=submit]")
            page.wait_for_function("() => window.usageCharts && window.usageCharts.days && window.usageCharts.users")

            for canvas in ("#chart-days", "#chart-users"):
                box = page.locator(canvas).bounding_box()
                assert box and box["width"] > 300 and box["height"] > 150, (canvas, box)
            days = page.evaluate("""() => window.usageCharts.days.data.datasets.map(d => [d.label, d.data])""")
            assert [label for label, _ in days] == ["Input tokens (not cached)", "Cached input tokens", "Output tokens"]
            assert days[2][1] == [1500, 2050, 0, 0, 800, 300, 0]  # output tokens per day; the 3rd and 4th quiet
            users = page.evaluate("() => [window.usageCharts.users.data.labels, window.usageCharts.users.data.datasets[0].data]")
            assert users == [["bob", "ada", "dee"], [1.234567, 0.183333, 0]]
            # The charts painted something: some canvas pixels are not transparent.
            painted = page.evaluate("""(id) => {
                const c = document.querySelector(id); const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++; return n; }""", "#chart-users")
            assert painted > 1000

            assert page.locator("#table-days caption").inner_text() == "Usage per day"
            assert page.locator("#table-days tbody tr").count() == 7
            assert page.locator("#table-users tbody th a").all_inner_texts() == ["bob", "ada", "dee"]
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "usage-dashboard.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []

"""Which tools a conversation gets: the built-ins and REALTIME_TOOLS, less those turned off by the site or the user."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import re

import pytest

from conversations.models import VoicePreferences
from conversations.realtime.options import Preferences
from conversations.tools import Tool, ToolContext
from conversations.tools.checks import tools_settings_check
from conversations.tools.selectors import site_tools, tools_for_user

pytestmark = pytest.mark.django_db


def names(tools) -> list[str]:
    return [t.name for t in tools]


def test_the_site_has_recall_and_current_time_by_default(user):
    registry = tools_for_user(user=user)
    assert registry.names() == ["recall", "current_time"]
    assert registry.timeout == 10.0
    assert registry.max_output_chars == 4000


def test_dotted_paths_add_decorated_and_plain_typed_functions(settings, user):
    settings.REALTIME_TOOLS = ["tests.sample_tools.weather", "tests.sample_tools.opening_hours"]
    registry = tools_for_user(user=user)
    assert registry.names() == ["recall", "current_time", "weather", "opening_hours"]
    opening = next(t for t in registry if t.name == "opening_hours")
    assert isinstance(opening, Tool)
    assert opening.description == "When a place opens (a plain typed function, not decorated)."
    assert opening.parameters["required"] == ["place"]
    result = asyncio.run(registry.run("opening_hours", '{"place": "the museum"}',
                                      ToolContext(user_id=5, conversation_id="c", time_zone="UTC")))
    assert json.loads(result.output) == "the museum opens at 9 for user 5"


def test_limits_come_from_the_settings(settings, user):
    settings.TOOL_TIMEOUT_SECONDS = 2.5
    settings.TOOL_OUTPUT_MAX_CHARS = 900
    registry = tools_for_user(user=user)
    assert (registry.timeout, registry.max_output_chars) == (2.5, 900)


def test_names_turned_off_site_wide_are_left_out(settings, user):
    settings.REALTIME_TOOLS = ["tests.sample_tools.weather"]
    settings.REALTIME_TOOLS_DISABLED = ["recall", "weather"]
    assert tools_for_user(user=user).names() == ["current_time"]


def test_every_tool_off_gives_an_empty_registry_that_is_false(settings, user):
    settings.REALTIME_TOOLS_DISABLED = ["recall", "current_time"]
    assert not tools_for_user(user=user)
    assert tools_for_user(user=user).declarations() == []


def test_tools_the_user_turned_off_are_left_out_for_them_only(user, django_user_model):
    other = django_user_model.objects.create_user(username="grace", password="another horse battery")
    VoicePreferences.objects.create(user=user, voice="alloy", tools_disabled=["recall"])
    assert tools_for_user(user=user).names() == ["current_time"]
    assert tools_for_user(user=other).names() == ["recall", "current_time"]


def test_tools_for_user_is_one_query(user, django_assert_num_queries):
    site_tools()  # loaded once per process, not per conversation
    with django_assert_num_queries(1):
        tools_for_user(user=user)


@pytest.mark.parametrize(
    "paths,disabled,complaint",
    [
        (["tests.sample_tools.nothing_here"], [], "cannot import 'tests.sample_tools.nothing_here'"),
        (["no_such_module.tool"], [], "cannot import 'no_such_module.tool' (ModuleNotFoundError"),
        (["tests.sample_tools.NOT_CALLABLE"], [], "is neither a tool nor a function"),
        (["tests.sample_tools.undocumented"], [], "needs a description"),
        (["tests.sample_tools.untyped"], [], "parameter place has no type hint"),
        (["tests.sample_tools.another_recall"], [], "two tools are named 'recall'"),
        (["tests.sample_tools.weather", "tests.sample_tools.weather"], [], "two tools are named 'weather'"),
        ([], ["recal"], "REALTIME_TOOLS_DISABLED names no tool called 'recal'; the tools are recall, current_time."),
    ],
)
def test_a_bad_path_or_name_fails_the_system_check_naming_it(settings, paths, disabled, complaint):
    settings.REALTIME_TOOLS = paths
    settings.REALTIME_TOOLS_DISABLED = disabled
    problems = tools_settings_check(None)
    assert [p.id for p in problems] == ["conversations.E003"]
    assert complaint in problems[0].msg


def test_good_settings_pass_the_system_check(settings):
    settings.REALTIME_TOOLS = ["tests.sample_tools.weather"]
    settings.REALTIME_TOOLS_DISABLED = ["current_time"]
    assert tools_settings_check(None) == []


def test_the_check_runs_with_manage_py_check(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.REALTIME_TOOLS = ["no_such_module.tool"]
    with pytest.raises(SystemCheckError, match="conversations.E003"):
        call_command("check")


@pytest.mark.parametrize(
    "environment,complaint",
    [({"TOOL_TIMEOUT_SECONDS": "0"}, "TOOL_TIMEOUT_SECONDS"), ({"TOOL_OUTPUT_MAX_CHARS": "100"}, "at least 200")],
)
def test_limits_that_cannot_work_stop_the_settings_from_loading(environment, complaint):
    import os
    import subprocess
    import sys

    env = {**os.environ, "DOTENV_FILE": "", "SECRET_KEY": "x", **environment}
    done = subprocess.run([sys.executable, "-c", "import voiceapp.settings"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert complaint in done.stderr


def test_the_environment_settings_are_read():
    import os
    import subprocess
    import sys

    env = {**os.environ, "DOTENV_FILE": "", "SECRET_KEY": "x", "REALTIME_TOOLS": "a.b,c.d",
           "REALTIME_TOOLS_DISABLED": "recall", "TOOL_TIMEOUT_SECONDS": "3", "TOOL_OUTPUT_MAX_CHARS": "500"}
    code = ("import voiceapp.settings as s; "
            "print(s.REALTIME_TOOLS, s.REALTIME_TOOLS_DISABLED, s.TOOL_TIMEOUT_SECONDS, s.TOOL_OUTPUT_MAX_CHARS)")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "['a.b', 'c.d'] ['recall'] 3.0 500"


# --- The settings page --------------------------------------------------------------------------


@pytest.fixture
def logged_in(client, user, settings):
    settings.AZURE_OPENAI_API_VERSION = ""
    client.force_login(user)
    return client


def form_data(*, tools: list[str]) -> dict:
    """What a browser submits: every field, and one `tools` value per ticked box."""
    data = {k: ("" if v is None else v) for k, v in dataclasses.asdict(Preferences()).items()}
    for name in ("temperature", "record", "tools_disabled"):
        data.pop(name)
    data["tools"] = tools
    return data


def boxes(page: str) -> dict[str, bool]:
    """Each tool's checkbox on the page: ticked or not."""
    found = re.finditer(r'<input type="checkbox" name="tools" value="(\w+)"[^>]*>', page)
    return {m.group(1): " checked" in m.group(0) for m in found}


def test_the_settings_page_shows_each_tool_ticked_with_its_label(logged_in):
    page = logged_in.get("/settings/").content.decode()
    assert boxes(page) == {"recall": True, "current_time": True}
    assert "Remember earlier conversations" in page and "Tell the time and date" in page
    assert "Remembering searches only your own conversations." in page


def test_unticking_a_tool_turns_it_off_for_the_user(logged_in, user):
    response = logged_in.post("/settings/", form_data(tools=["current_time"]))
    assert response.status_code == 302
    assert VoicePreferences.objects.get(user=user).tools_disabled == ["recall"]
    assert boxes(logged_in.get("/settings/").content.decode()) == {"recall": False, "current_time": True}
    assert tools_for_user(user=user).names() == ["current_time"]
    logged_in.post("/settings/", form_data(tools=["current_time", "recall"]))
    assert tools_for_user(user=user).names() == ["recall", "current_time"]


def test_the_talk_pages_panel_saves_it_too(logged_in, user):
    assert 'name="tools"' in logged_in.get("/").content.decode()
    response = logged_in.post("/settings/", form_data(tools=[]), HTTP_ACCEPT="application/json")
    assert response.json()["ok"] is True
    assert sorted(VoicePreferences.objects.get(user=user).tools_disabled) == ["current_time", "recall"]


def test_a_name_that_is_no_tool_is_refused(logged_in, user):
    response = logged_in.post("/settings/", form_data(tools=["delete_everything"]), HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["tools"]


def test_a_tool_off_site_wide_is_not_offered_and_the_users_choice_for_it_is_kept(logged_in, user, settings):
    logged_in.post("/settings/", form_data(tools=["current_time"]))
    settings.REALTIME_TOOLS_DISABLED = ["recall"]
    assert boxes(logged_in.get("/settings/").content.decode()) == {"current_time": True}
    logged_in.post("/settings/", form_data(tools=["current_time"]))
    settings.REALTIME_TOOLS_DISABLED = []
    assert VoicePreferences.objects.get(user=user).tools_disabled == ["recall"]


def test_with_every_tool_off_site_wide_the_page_has_no_tools_section(logged_in, settings):
    settings.REALTIME_TOOLS_DISABLED = ["recall", "current_time"]
    page = logged_in.get("/settings/").content.decode()
    assert 'name="tools"' not in page
    assert logged_in.post("/settings/", form_data(tools=[])).status_code == 302


def test_the_tools_section_is_translated(logged_in):
    page = logged_in.get("/settings/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "An frühere Gespräche erinnern" in page and "Werkzeuge" in page


# --- The README's example ------------------------------------------------------------------------


def test_the_readme_example_tool_works_as_documented(tmp_path, monkeypatch, settings, user):
    import sys
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Tools (function calling)"):]
    code = re.search(r"```python\n# myproject/tools.py\n(.*?)```", section, re.S).group(1)
    setting = re.search(r"^(REALTIME_TOOLS=\S+)", section, re.M).group(1)
    (tmp_path / "myproject").mkdir()
    (tmp_path / "myproject" / "__init__.py").write_text("")
    (tmp_path / "myproject" / "tools.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "myproject", raising=False)
    monkeypatch.delitem(sys.modules, "myproject.tools", raising=False)
    settings.REALTIME_TOOLS = setting.split("=", 1)[1].split(",")

    assert tools_settings_check(None) == []
    registry = tools_for_user(user=user)
    declaration = registry.declarations()[-1]
    assert declaration["name"] == "weather"
    assert declaration["description"] == "Today's weather in a city."
    assert declaration["parameters"]["required"] == ["city"]
    assert declaration["parameters"]["properties"]["unit"]["enum"] == ["celsius", "fahrenheit"]
    context = ToolContext(user_id=user.pk, conversation_id="c", time_zone="UTC")
    assert json.loads(asyncio.run(registry.run("weather", '{"city": "Lisbon"}', context)).output) == {
        "city": "Lisbon", "temperature": 21, "unit": "celsius"}
    failed = asyncio.run(registry.run("weather", '{"city": "Atlantis"}', context))
    assert json.loads(failed.output) == {"error": "weather failed: There is no weather in Atlantis."}
    assert registry.working_text("weather") == "Looking at the weather…"

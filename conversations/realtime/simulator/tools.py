"""Function calling in the simulator: declarations checked, calls chosen, outputs answered.

The simulated model calls a declared function when the user's last words name its purpose.
Everything here is pure (no I/O): `session.py` streams the calls and carries the items.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from ..schema import SchemaError, _type_message

# The service's rule for function names (OpenAI: "string does not match pattern ...").
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]+$")
MAX_NAME_LENGTH = 64
TOOL_CHOICE_MODES = ("none", "auto", "required")
JSON_TYPES = frozenset({"string", "integer", "number", "boolean", "object", "array", "null"})
SNIPPET_CHARS = 160  # a quoted snippet or output is cut here, so the spoken answer stays short
MAX_QUERY_WORDS = 8

# Words that name each built-in tool's purpose; matched at the start of a word, case-insensitively.
# Bare "time" is left out on purpose: "last time we talked" asks to recall, not for the clock.
PURPOSES: dict[str, tuple[str, ...]] = {
    "recall": (
        "remember",
        "recall",
        "remind me",
        "what did i tell you",
        "what did i say",
        "did i tell you",
        "did i mention",
        "earlier conversation",
        "previous conversation",
        "past conversation",
        "last conversation",
        "we talked about",
        "we discussed",
    ),
    "current_time": (
        "what time",
        "the time",
        "time is it",
        "current time",
        "time now",
        "date today",
        "today's date",
        "the date",
        "what date",
        "what day is it",
    ),
}
# Words that carry no subject: dropped when picking the salient words of a message for a query.
_STOPWORDS = frozenset(
    """a an the and or but if of to in on at by for from with about into over under up down out
    off i me my mine we us our you your yours he him his she her it its they them their this
    that these those is am are was were be been being do does did done have has had having can
    could will would shall should may might must what which who whom whose when where why how
    all any some no not so than too very just also again there here then now please tell told
    say said saying know knew let lets last week weeks yesterday today tomorrow ago earlier
    before recently month months year years time day days night morning evening once thing
    things something anything conversation conversations""".split()  # noqa: SIM905 (reads as prose)
)
# Purpose words say *how* to look something up, not *what*: dropped unless nothing else is left.
_PURPOSE_WORDS = frozenset(
    {
        "remember",
        "recall",
        "remind",
        "previous",
        "past",
        "talked",
        "discussed",
        "mention",
        "mentioned",
    }
)


@dataclass(frozen=True)
class Call:
    """A function call the simulated model makes: the tool's name and its JSON arguments text."""

    name: str
    arguments: str


# --- declarations ----------------------------------------------------------------------------


def check_tools(tools: list[dict[str, Any]], param: str) -> None:
    """Raise SchemaError for a declaration the service refuses (the types leave these open)."""
    for index, tool in enumerate(tools):
        if tool.get("type", "function") != "function":
            continue  # MCP servers: accepted, but the simulator never calls them
        where = f"{param}[{index}]"
        name = tool.get("name")
        if name is None:
            raise SchemaError(
                "missing_required_parameter",
                f"Missing required parameter: '{where}.name'.",
                f"{where}.name",
            )
        if not NAME_PATTERN.match(name):
            raise SchemaError(
                "invalid_value",
                f"Invalid '{where}.name': string does not match pattern. Expected a string that "
                "matches the pattern '^[a-zA-Z0-9_-]+$'.",
                f"{where}.name",
            )
        if len(name) > MAX_NAME_LENGTH:
            raise SchemaError(
                "string_above_max_length",
                f"Invalid '{where}.name': string too long. Expected a string with maximum length "
                f"{MAX_NAME_LENGTH}, but got a string with length {len(name)} instead.",
                f"{where}.name",
            )
        parameters = tool.get("parameters")
        if parameters is None:
            continue
        if not isinstance(parameters, dict):
            raise SchemaError(
                "invalid_type",
                _type_message(f"{where}.parameters", "an object", parameters),
                f"{where}.parameters",
            )
        problem = _schema_problem(parameters, ())
        if problem:
            # OpenAI's wording ("Invalid schema for function 'x': In context=...").
            raise SchemaError(
                "invalid_function_parameters",
                f"Invalid schema for function '{name}': {problem}",
                f"{where}.parameters",
            )


def _schema_problem(schema: dict[str, Any], context: tuple[str, ...]) -> str:
    """What is wrong with a (sub)schema, in OpenAI's `In context=(...)` style; "" if nothing."""
    kind = schema.get("type")
    if not context and kind is not None and kind != "object":
        return (
            f"schema must be a JSON Schema of 'type: \"object\"', got 'type: {json.dumps(kind)}'."
        )
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    if any(not isinstance(k, str) or k not in JSON_TYPES for k in kinds):
        return (
            f"In context={context}, {json.dumps(kind)} is not valid under any of the given schemas."
        )
    properties = schema.get("properties", {})
    if not isinstance(properties, dict) or not all(
        isinstance(p, dict) for p in properties.values()
    ):
        return f"In context={context}, 'properties' must be an object of schemas."
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        return f"In context={context}, 'required' must be an array of strings."
    if "enum" in schema and (not isinstance(schema["enum"], list) or not schema["enum"]):
        return f"In context={context}, 'enum' must be a non-empty array."
    for name, sub in properties.items():
        problem = _schema_problem(sub, context + ("properties", name))
        if problem:
            return problem
    items = schema.get("items")
    if isinstance(items, dict):
        return _schema_problem(items, context + ("items",))
    return ""


def check_tool_choice(dialect: str, choice: Any, tools: list[dict[str, Any]], param: str) -> None:
    """Raise SchemaError for a tool_choice that names no declared function."""
    names = declared_names(tools)
    if isinstance(choice, dict) and choice.get("type") == "function":
        # GA forces a function with {"type": "function", "name": ...}; the types check the shape,
        # not that it exists. The message is the simulator's: the service's is not documented.
        if choice.get("name") not in names:
            raise SchemaError(
                "invalid_value",
                f"Invalid value for '{param}.name': no function named '{choice.get('name')}' "
                "in the tools.",
                f"{param}.name",
            )
    elif (
        # The preview types take any string: a mode, or (the simulator's reading) a function's name.
        dialect == "preview"
        and isinstance(choice, str)
        and choice not in TOOL_CHOICE_MODES
        and choice not in names
    ):
        raise SchemaError(
            "invalid_value",
            f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', 'required' or "
            "the name of a declared function.",
            param,
        )


def declared_names(tools: list[dict[str, Any]]) -> list[str]:
    """The names of the declared functions, in order."""
    return [
        tool["name"]
        for tool in tools
        if tool.get("type", "function") == "function" and isinstance(tool.get("name"), str)
    ]


# --- choosing calls --------------------------------------------------------------------------


def choose_calls(
    text: str | None, tools: list[dict[str, Any]], tool_choice: Any, *, parallel: bool = True
) -> list[Call]:
    """The calls a response makes for the user's latest words under tool_choice; [] to speak."""
    functions = [
        t
        for t in tools
        if t.get("type", "function") == "function" and isinstance(t.get("name"), str)
    ]
    if not functions or tool_choice == "none":
        return []
    forced = _forced(tool_choice, functions)
    if forced is not None:
        return [Call(forced["name"], json.dumps(arguments_for(forced, text or "")))]
    if not text:
        return []
    mentioned: list[tuple[int, int, dict[str, Any]]] = []
    for order, tool in enumerate(functions):
        position = _mention(text, tool["name"])
        if position is not None:
            mentioned.append((position, order, tool))
    # In the order asked: "the time, and what I said about X" calls current_time first.
    calls = [
        Call(tool["name"], json.dumps(arguments_for(tool, text)))
        for _, _, tool in sorted(mentioned)
    ]
    return calls if parallel else calls[:1]


def _forced(tool_choice: Any, functions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The function a tool_choice makes the model call whatever was said, if any."""
    if tool_choice == "required":
        return functions[0]
    name = tool_choice.get("name") if isinstance(tool_choice, dict) else tool_choice
    return next((tool for tool in functions if tool["name"] == name), None)


def _mention(text: str, name: str) -> int | None:
    """Where the text first names the tool's purpose (purpose words, or its name as words)."""
    lowered = text.lower().replace("\u2019", "'")
    phrases = PURPOSES.get(name, ()) + (re.sub(r"[_-]+", " ", name).lower().strip(),)
    found = [
        match.start()
        for phrase in phrases
        if phrase
        for match in [re.search(r"(?<!\w)" + re.escape(phrase), lowered)]
        if match is not None
    ]
    return min(found) if found else None


def salient_words(text: str) -> str:
    """The words to look up: the subject after "about", else the message's content words."""
    words = [w.strip("'-") for w in re.findall(r"[\w'-]+", text.lower().replace("\u2019", "'"))]
    words = [w for w in words if w]
    if "about" in words:
        subject = [w for w in words[words.index("about") + 1 :] if w not in _STOPWORDS]
        if subject:
            return " ".join(subject[:MAX_QUERY_WORDS])
    content = [w for w in words if w not in _STOPWORDS]
    subject = [w for w in content if w not in _PURPOSE_WORDS] or content
    return " ".join(subject[:MAX_QUERY_WORDS]) or " ".join(text.split()[:MAX_QUERY_WORDS])


def arguments_for(tool: dict[str, Any], text: str) -> dict[str, Any]:
    """Arguments fitting the declared schema: salient words in the text slot, required ones set."""
    schema = tool.get("parameters") if isinstance(tool.get("parameters"), dict) else {}
    properties: dict[str, Any] = schema.get("properties") or {}
    required = [name for name in schema.get("required") or [] if name in properties]
    slot = None if tool["name"] == "current_time" else _text_slot(properties, required)
    query = salient_words(text) if slot is not None else ""
    arguments: dict[str, Any] = {}
    for name, sub in properties.items():
        if name == slot:
            arguments[name] = _value(sub, query)
        elif name in required:
            arguments[name] = _value(sub, "")
    return arguments


def _text_slot(properties: dict[str, Any], required: list[str]) -> str | None:
    """The property for the user's words: `query`, else the first required string, else any."""
    strings = [name for name, sub in properties.items() if "string" in _types(sub)]
    if "query" in strings:
        return "query"
    return next((name for name in strings if name in required), strings[0] if strings else None)


def _types(schema: dict[str, Any]) -> list[str]:
    """The JSON types a (sub)schema allows; an enum or an untyped schema counts as a string."""
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [k for k in kind if isinstance(k, str)]
    return ["string"]


def _value(schema: dict[str, Any], text: str) -> Any:
    """A value valid for a property schema: enum, const, string, number, boolean, object, array."""
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return text if text in schema["enum"] else schema["enum"][0]
    kinds = [k for k in _types(schema) if k != "null"] or ["null"]
    kind = kinds[0]
    if kind == "string":
        value = text
        if isinstance(schema.get("maxLength"), int):
            value = value[: schema["maxLength"]]
        if isinstance(schema.get("minLength"), int):
            value += "x" * max(0, schema["minLength"] - len(value))
        return value
    if kind in ("integer", "number"):
        return _number(schema, integer=kind == "integer")
    if kind == "boolean":
        return False
    if kind == "object":
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        return {
            name: _value(properties[name], "")
            for name in schema.get("required") or []
            if name in properties
        }
    if kind == "array":
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        return [_value(items, "") for _ in range(int(schema.get("minItems") or 0))]
    return None


def _number(schema: dict[str, Any], *, integer: bool) -> int | float:
    """1 (a natural count), moved inside minimum/maximum when they exclude it."""
    low, high = schema.get("minimum"), schema.get("maximum")
    value: int | float = 1
    if isinstance(low, (int, float)) and value < low:
        value = math.ceil(low) if integer else low
    if isinstance(high, (int, float)) and value > high:
        value = math.floor(high) if integer else high
    return value


# --- answering outputs -----------------------------------------------------------------------


def answer(outputs: list[tuple[str, str]]) -> str:
    """What the model says once it has the (tool name, output text) pairs: it quotes them."""
    return " ".join(_answer_one(name, output) for name, output in outputs)


def _answer_one(name: str, output: str) -> str:
    """One output in words: recall matches, the time, a failure, or a short quote of the rest."""
    try:
        value = json.loads(output)
    except (ValueError, TypeError):
        return _sentence(f"The {_words(name)} tool said: {_quote(output)}")
    if isinstance(value, dict) and "error" in value:
        error = value["error"]
        if isinstance(error, dict):
            error = error.get("message") or json.dumps(error)
        return _sentence(f"Sorry, the {_words(name)} tool failed: {_quote(str(error))}")
    if isinstance(value, dict) and isinstance(value.get("matches"), list):
        matches = [m for m in value["matches"] if isinstance(m, dict)][:3]
        if not matches:
            return "I found nothing about that in your earlier conversations."
        return " ".join(
            _sentence(f"On {m.get('date') or 'an earlier day'} you said: {_quote(_said(m))}")
            for m in matches
        )
    if isinstance(value, dict) and isinstance(value.get("time"), str):
        zone = value.get("time_zone")
        return _sentence(
            f"It is {value['time']}" + (f" in {zone}" if isinstance(zone, str) and zone else "")
        )
    return _sentence(
        f"The {_words(name)} tool returned: {_quote(json.dumps(value, ensure_ascii=False))}"
    )


def _said(match: dict[str, Any]) -> str:
    """What a recall match quotes: its snippet, else its title."""
    return str(match.get("snippet") or match.get("title") or "")


def _words(name: str) -> str:
    """A function name read aloud: current_time -> "current time"."""
    return re.sub(r"[_-]+", " ", name).strip() or "tool"


def _quote(text: str) -> str:
    """Text on one line, cut to a spoken length."""
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 3].rstrip() + "..."


def _sentence(text: str) -> str:
    """End with a full stop unless the quoted text already ends a sentence."""
    return text if text[-1:] in ".?!" else text + "."


# --- items -----------------------------------------------------------------------------------


def check_item(item: dict[str, Any]) -> None:
    """Require what the GA types require of function items, in both dialects."""
    needed = {"function_call": ("name", "arguments"), "function_call_output": ("call_id", "output")}
    for field in needed.get(item.get("type") or "", ()):
        if item.get(field) is None:
            raise SchemaError(
                "missing_required_parameter",
                f"Missing required parameter: 'item.{field}'.",
                f"item.{field}",
            )


def call_item(
    item_id: str, call_id: str, name: str, arguments: str, *, status: str
) -> dict[str, Any]:
    """A function_call item as the service shows it (the same shape in both dialects)."""
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "function_call",
        "status": status,
        "name": name,
        "call_id": call_id,
        "arguments": arguments,
    }


def argument_chunks(arguments: str, pieces: int = 3) -> list[str]:
    """The arguments text split into a few deltas, as the model streams them."""
    size = max(1, math.ceil(len(arguments) / pieces))
    return [arguments[i : i + size] for i in range(0, len(arguments), size)] or [""]

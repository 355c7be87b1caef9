"""Strict validation of realtime events against the `openai` package's type definitions.

The package's models allow unknown fields and its unions carry their discriminator in an
openai-only annotation that pydantic ignores, so this module dispatches on `type` itself,
validates in pydantic strict mode, picks the most relevant branch of failed unions, and then
walks the result for extra fields. Errors read like the service's: `unknown_parameter`,
`missing_required_parameter`, `invalid_type`, `invalid_value` (and `unknown_event` for a server
event type that does not exist). No Django imports.
"""

from __future__ import annotations

import typing
from functools import cache
from typing import Any

from openai.types.beta.realtime import RealtimeClientEvent as PreviewClientEvent
from openai.types.beta.realtime import RealtimeServerEvent as PreviewServerEvent
from openai.types.realtime import RealtimeClientEvent as GAClientEvent
from openai.types.realtime import RealtimeServerEvent as GAServerEvent
from openai.types.realtime.realtime_session_create_response import RealtimeSessionCreateResponse
from pydantic import BaseModel, TypeAdapter, ValidationError

__all__ = ["DIALECTS", "SchemaError", "validate_client_event", "validate_server_event"]

DIALECTS = ("ga", "preview")

_UNIONS: dict[tuple[str, str], Any] = {
    ("ga", "client"): GAClientEvent,
    ("ga", "server"): GAServerEvent,
    ("preview", "client"): PreviewClientEvent,
    ("preview", "server"): PreviewServerEvent,
}

# Fields the service sends on server events that the package's model omits. GA sessions are
# checked against RealtimeSessionCreateResponse instead (the package's own model for them);
# the preview Session model simply lacks `object` and `expires_at`, which the service sends.
_SERVICE_EXTRAS: dict[tuple[str, str], frozenset[str]] = {
    ("preview", "session.created"): frozenset({"session.object", "session.expires_at"}),
    ("preview", "session.updated"): frozenset({"session.object", "session.expires_at"}),
    ("ga", "session.created"): frozenset({"session.id", "session.object", "session.expires_at"}),
    ("ga", "session.updated"): frozenset({"session.id", "session.object", "session.expires_at"}),
}

# pydantic names union branches by class (CamelCase) or by a type expression such as "int".
_PRIMITIVE_TAGS = frozenset({"int", "str", "float", "bool", "none", "list", "dict", "is-instance"})
_DISCRIMINATOR_FIELDS = ("type", "role")


class SchemaError(ValueError):
    """An event that the service would reject, with the service's error code, message and param."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param

    def __repr__(self) -> str:
        return f"SchemaError({self.code!r}, {self.message!r}, {self.param!r})"


def validate_client_event(event: dict[str, Any], dialect: str) -> None:
    """Raise SchemaError unless `event` is a valid client event in `dialect` ("ga" or "preview")."""
    _validate(event, dialect, "client")


def validate_server_event(event: dict[str, Any], dialect: str) -> None:
    """Raise SchemaError unless `event` is a valid server event in `dialect` ("ga" or "preview")."""
    _validate(event, dialect, "server")


@cache
def _models(dialect: str, side: str) -> dict[str, type[BaseModel]]:
    """Map each event `type` literal to its model class for one dialect and side."""
    if (dialect, side) not in _UNIONS:
        raise ValueError(f"unknown dialect {dialect!r}")
    union = typing.get_args(_UNIONS[(dialect, side)])[0]  # strip Annotated[..., PropertyInfo]
    table: dict[str, type[BaseModel]] = {}
    for cls in typing.get_args(union):
        for literal in typing.get_args(cls.model_fields["type"].annotation):
            table[literal] = cls
    return table


@cache
def _adapter(cls: Any) -> TypeAdapter[Any]:
    """One cached TypeAdapter per model: building them is the expensive part."""
    return TypeAdapter(cls)


def _validate(event: dict[str, Any], dialect: str, side: str) -> None:
    """Dispatch on `type`, validate strictly, then reject extra fields."""
    models = _models(dialect, side)
    if not isinstance(event, dict):
        raise SchemaError(
            "invalid_type",
            f"Invalid type for event: expected an object, but got {_kind(event)} instead.",
        )
    if "type" not in event:
        raise SchemaError(
            "missing_required_parameter", "Missing required parameter: 'type'.", "type"
        )
    event_type = event["type"]
    if not isinstance(event_type, str):
        raise SchemaError("invalid_type", _type_message("type", "a string", event_type), "type")
    cls = models.get(event_type)
    if cls is None:
        if side == "server":
            raise SchemaError(
                "unknown_event", f"Unknown server event type: '{event_type}'.", "type"
            )
        # The service answers an unknown client event type with invalid_value on `type`.
        supported = ", ".join(f"'{name}'" for name in models)
        raise SchemaError(
            "invalid_value",
            f"Invalid value: '{event_type}'. Supported values are: {supported}.",
            "type",
        )
    allowed = (
        _SERVICE_EXTRAS.get((dialect, event_type), frozenset()) if side == "server" else frozenset()
    )
    try:
        model = _adapter(cls).validate_python(event, strict=True)
    except ValidationError as exc:
        raise _translate(exc) from None
    _reject_extras(model, "", allowed)
    if (
        side == "server"
        and dialect == "ga"
        and event_type in ("session.created", "session.updated")
    ):
        session = event.get("session")
        if isinstance(session, dict) and session.get("type") == "realtime" and "object" in session:
            try:
                full = _adapter(RealtimeSessionCreateResponse).validate_python(session, strict=True)
            except ValidationError as exc:
                raise _translate(exc, prefix=("session",)) from None
            _reject_extras(full, "session", frozenset())


def _reject_extras(value: Any, path: str, allowed: frozenset[str]) -> None:
    """Raise unknown_parameter for the first field that no model declares."""
    if isinstance(value, BaseModel):
        for name in value.model_extra or {}:
            param = _join(path, name)
            if param not in allowed:
                raise SchemaError("unknown_parameter", f"Unknown parameter: '{param}'.", param)
        for name in type(value).model_fields:
            _reject_extras(getattr(value, name), _join(path, name), allowed)
    elif isinstance(value, (list, tuple)):
        for index, element in enumerate(value):
            _reject_extras(element, f"{path}[{index}]", allowed)
    # Plain dicts are free-form (`object`-typed fields such as tool parameters): not descended.


def _join(path: str, name: str | int) -> str:
    """Render a location the way the service does: `session.audio.input`, `item.content[0]`."""
    if isinstance(name, int):
        return f"{path}[{name}]"
    return f"{path}.{name}" if path else name


def _is_tag(segment: Any) -> bool:
    """Whether a pydantic location segment names a union branch rather than a field."""
    return isinstance(segment, str) and (
        segment[:1].isupper() or "[" in segment or segment in _PRIMITIVE_TAGS
    )


def _best_error(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """Pick the one error to report, resolving each failed union to its most plausible branch."""
    errs = [dict(e, loc=tuple(e["loc"])) for e in errors]
    while True:
        tagged = [(i, e) for e in errs for i, seg in enumerate(e["loc"]) if _is_tag(seg)]
        if not tagged:
            return errs[0]
        depth = min(i for i, _ in tagged)
        prefix = next(e for i, e in tagged if i == depth)["loc"][:depth]
        group = [
            e
            for e in errs
            if e["loc"][:depth] == prefix and len(e["loc"]) > depth and _is_tag(e["loc"][depth])
        ]
        branches: dict[str, list[dict[str, Any]]] = {}
        for e in group:
            branches.setdefault(e["loc"][depth], []).append(e)

        def score(item: tuple[str, list[dict[str, Any]]], depth: int = depth) -> tuple[bool, int]:
            # A branch whose own `type`/`role` literal mismatched is the wrong branch, not a near miss.
            # So is a string-literal branch given an object: a tool_choice `{"type": "function"}`
            # is a function choice missing its name, not a misspelt "auto" (as Azure reports it:
            # Azure-Samples/aoai-realtime-audio-sdk#132).
            _, es = item
            mismatch = any(
                e["type"] == "literal_error"
                and (
                    (len(e["loc"]) == depth + 2 and e["loc"][depth + 1] in _DISCRIMINATOR_FIELDS)
                    or (len(e["loc"]) == depth + 1 and isinstance(e.get("input"), dict))
                )
                for e in es
            )
            return (mismatch, len(es))

        _, chosen = min(branches.items(), key=score)  # min() keeps the first branch on ties
        stripped = [dict(e, loc=e["loc"][:depth] + e["loc"][depth + 1 :]) for e in chosen]
        errs = stripped + [e for e in errs if e not in group]


def _translate(exc: ValidationError, prefix: tuple[Any, ...] = ()) -> SchemaError:
    """Turn a pydantic ValidationError into the service's error code, message and param."""
    error = _best_error(exc.errors())
    param = ""
    for segment in prefix + tuple(error["loc"]):
        param = _join(param, segment)
    kind = error["type"]
    if kind == "missing":
        return SchemaError(
            "missing_required_parameter", f"Missing required parameter: '{param}'.", param
        )
    if kind.endswith(("_type", "_parsing")) or kind in ("model_attributes_type",):
        expected = _EXPECTED.get(kind, kind.removesuffix("_type").replace("_", " "))
        return SchemaError(
            "invalid_type", _type_message(param, expected, error.get("input")), param
        )
    if kind == "literal_error":
        supported = error.get("ctx", {}).get("expected", "")
        return SchemaError(
            "invalid_value",
            f"Invalid value: '{error.get('input')}'. Supported values are: {supported}.",
            param,
        )
    return SchemaError("invalid_value", f"Invalid value for '{param}': {error['msg']}.", param)


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "float_type": "a decimal",
    "float_parsing": "a decimal",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "list_type": "an array",
    "tuple_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def _kind(value: Any) -> str:
    """Describe a JSON value's type the way the service's messages do."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    return "an object"


def _type_message(param: str, expected: str, value: Any) -> str:
    """The service's wording for a type mismatch."""
    return f"Invalid type for '{param}': expected {expected}, but got {_kind(value)} instead."

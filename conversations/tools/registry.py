"""Tools the realtime model may call: typed Python callables, their JSON schemas, and running them safely.

No Django here (the relay core's rule): the caller passes the limits and a `translate` function, and tools
that need the database live in builtin.py. `ToolRegistry.run` never raises, except when it is cancelled.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, get_type_hints

import pydantic
import pydantic_core

logger = logging.getLogger(__name__)

# What OpenAI and Azure accept as a function's name.
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# The smallest output limit that still fits an error message; settings refuse less.
MIN_OUTPUT_CHARS = 200
# A thread cannot be killed: a tool past its time limit runs on until it returns, holding its thread. The
# pool is bounded, so runaway tools take at most this many threads; later calls wait in the queue with
# their time limit counting, and time out instead of starting threads without end.
MAX_THREADS = 8

_executor: concurrent.futures.ThreadPoolExecutor | None = None


def gettext_noop(message: str) -> str:
    """Mark a message for `makemessages` (it knows this name); the registry's `translate` translates it."""
    return message


UNKNOWN_TOOL = gettext_noop("The assistant asked for a tool this site does not have (%(tool)s).")
BAD_ARGUMENTS = gettext_noop("The assistant called %(tool)s with arguments it does not take; it was told why.")
TOOL_FAILED = gettext_noop("%(tool)s did not work this time; the assistant was told.")
TOOL_TIMED_OUT = gettext_noop("%(tool)s took too long; the assistant was told.")
TOOL_DONE = gettext_noop("%(tool)s finished.")
WORKING = gettext_noop("Working on it…")


def shared_executor() -> concurrent.futures.ThreadPoolExecutor:
    """The process's bounded pool of tool threads, made on first use."""
    global _executor
    if _executor is None:
        _executor = concurrent.futures.ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="tool")
    return _executor


@dataclass(frozen=True)
class ToolContext:
    """What a tool may know about who called it."""

    user_id: int
    conversation_id: str  # uuid as str
    time_zone: str  # IANA name, already validated; "UTC" when unknown


@dataclass(frozen=True)
class ToolResult:
    """What running a tool gave: the text for the model, whether it worked, and plain words for the page."""

    output: str  # JSON text, sent upstream as function_call_output.output (size-limited)
    ok: bool  # False: bad arguments, unknown tool, exception, timeout
    summary: str  # for the page ("Found 2 earlier conversations mentioning boat.")


class ToolError(Exception):
    """Raised by a tool to tell the model what went wrong, in words meant for it (other exceptions are hidden)."""


class ToolArgumentsError(ValueError):
    """The model's arguments do not fit the tool's schema; the message names the bad argument."""


@dataclass(frozen=True)
class Tool:
    """A callable the model may call: its name, one-line description, argument schema and how it is shown."""

    name: str
    description: str
    function: Callable[..., Any]
    # Validates the model's arguments; its JSON schema is `parameters`. Fields are aliased to the
    # function's parameter names (so a parameter may be called `json` or `schema`).
    arguments: type[pydantic.BaseModel]
    parameters: Mapping[str, Any]
    context_parameter: str | None = None  # the function's parameter that receives the ToolContext
    label: Any = ""  # for the settings page (may be a lazy translation); the name when empty
    working_text: Any = ""  # shown while it runs (may be a lazy translation)
    # Plain words for the page from what the function returned and its arguments; may be a lazy translation.
    summarize: Callable[[Any, dict[str, Any]], str] | None = None
    timeout: float | None = None  # seconds; the registry's limit when None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function itself, so a decorated function still works as one."""
        return self.function(*args, **kwargs)

    def declaration(self) -> dict[str, Any]:
        """The tool as `session.update` declares it (the same flat shape in the GA and preview dialects)."""
        return {"type": "function", "name": self.name, "description": self.description,
                "parameters": dict(self.parameters)}

    def parse(self, arguments: str) -> dict[str, Any]:
        """The keyword arguments for the function from the model's JSON text, or ToolArgumentsError."""
        text = arguments.strip() if isinstance(arguments, str) else ""
        try:
            # The model sends "" (or nothing) for a tool without parameters.
            data = json.loads(text) if text else {}
        except (ValueError, RecursionError):
            raise ToolArgumentsError("the arguments are not valid JSON") from None
        if not isinstance(data, dict):
            raise ToolArgumentsError("the arguments must be a JSON object")
        try:
            validated = self.arguments.model_validate(data)
        except pydantic.ValidationError as exc:
            raise ToolArgumentsError("; ".join(_describe(error) for error in exc.errors()[:5])) from None
        except RecursionError:
            raise ToolArgumentsError("the arguments are nested too deeply") from None
        # Attributes, not model_dump(): a parameter typed as an enum or a model gets one, not a dict.
        return {field.alias or attr: getattr(validated, attr) for attr, field in type(validated).model_fields.items()}


def _describe(error: Mapping[str, Any]) -> str:
    """One validation error as "argument: what is wrong", without the value the model sent."""
    # The model chose the names of extra arguments: a long one is cut.
    place = ".".join(str(part)[:64] for part in error.get("loc", ())) or "arguments"
    return f"{place}: {error.get('msg', 'invalid')}"


def tool(
    function: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    arguments: type[pydantic.BaseModel] | None = None,
    label: Any = "",
    working_text: Any = "",
    summarize: Callable[[Any, dict[str, Any]], str] | None = None,
    timeout: float | None = None,
) -> Any:
    """Make a Tool of a typed function (`@tool`, `@tool(...)`): its schema from type hints, description from docstring.

    A parameter annotated `ToolContext` receives the caller's context and is not part of the schema.
    `arguments` declares the schema explicitly instead, as a pydantic model whose fields are the
    function's keyword arguments. Raises TypeError for anything that cannot be described.
    """

    def build(function: Callable[..., Any]) -> Tool:
        tool_name = name or getattr(function, "__name__", "")
        if timeout is not None and not timeout > 0:
            raise TypeError(f"The tool {tool_name}: its time limit must be above 0 seconds.")
        if not NAME_PATTERN.match(tool_name):
            raise TypeError(f"{tool_name!r} is not a valid tool name (letters, digits, _ and -, at most 64).")
        text = description if description is not None else (inspect.getdoc(function) or "")
        text = text.strip().split("\n\n")[0].replace("\n", " ").strip()
        if not text:
            raise TypeError(f"The tool {tool_name} needs a description: give it a docstring or description=.")
        model, context_parameter = _arguments_model(function, tool_name, arguments)
        return Tool(
            name=tool_name, description=text, function=function, arguments=model,
            parameters=json_schema(model), context_parameter=context_parameter, label=label,
            working_text=working_text, summarize=summarize, timeout=timeout,
        )

    return build if function is None else build(function)


def _arguments_model(
    function: Callable[..., Any], name: str, declared: type[pydantic.BaseModel] | None
) -> tuple[type[pydantic.BaseModel], str | None]:
    """The model of the function's arguments (from its signature, or the declared one) and its context parameter."""
    try:
        signature = inspect.signature(function)
        hints = get_type_hints(function, include_extras=True)
    except (TypeError, ValueError, NameError) as exc:
        raise TypeError(f"The tool {name}: cannot read its signature ({exc}).") from None
    context_parameter = None
    fields: dict[str, Any] = {}
    for index, parameter in enumerate(signature.parameters.values()):
        hint = hints.get(parameter.name, inspect.Parameter.empty)
        if hint is ToolContext:
            context_parameter = parameter.name
            continue
        if declared is not None:
            continue
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD, parameter.POSITIONAL_ONLY):
            raise TypeError(f"The tool {name}: parameter {parameter.name} must be a plain or keyword-only one.")
        if hint is inspect.Parameter.empty:
            raise TypeError(f"The tool {name}: parameter {parameter.name} has no type hint.")
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        # Aliased: the schema and the errors use the parameter's own name, whatever pydantic reserves.
        fields[f"p{index}"] = (Annotated[hint, pydantic.Field(alias=parameter.name)], default)
    if declared is not None:
        return declared, context_parameter
    try:
        model = pydantic.create_model(
            f"{name}_arguments", __config__=pydantic.ConfigDict(extra="forbid"), **fields
        )
        model.model_json_schema()
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError) as exc:
        raise TypeError(f"The tool {name}: its type hints cannot be described as JSON ({exc}).") from None
    return model, context_parameter


def json_schema(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The model's JSON schema as a function declaration wants it: references inlined, no titles."""
    schema = model.model_json_schema()
    definitions = schema.get("$defs", {})
    # An explicitly declared model may allow extra keys; the model is told it may not send them either way.
    cleaned = _clean(schema, definitions, ())
    cleaned.setdefault("properties", {})
    cleaned["type"] = "object"
    return cleaned


# Keys whose values are data, not schemas: a "title" inside them is not pydantic's.
_DATA_KEYS = frozenset({"default", "enum", "const", "examples"})


def _clean(node: Any, definitions: Mapping[str, Any], expanding: tuple[str, ...]) -> Any:
    """Drop titles and inline `$ref`s (a recursive type cannot be inlined and is refused)."""
    if isinstance(node, list):
        return [_clean(item, definitions, expanding) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = str(node["$ref"]).rsplit("/", 1)[-1]
        if ref in expanding or ref not in definitions:
            raise TypeError(f"recursive or unknown type {ref!r} in a tool's arguments")
        merged = {**definitions[ref], **{k: v for k, v in node.items() if k != "$ref"}}
        return _clean(merged, definitions, (*expanding, ref))
    cleaned: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs"):
            continue
        if key == "properties" and isinstance(value, dict):
            cleaned[key] = {prop: _clean(sub, definitions, expanding) for prop, sub in value.items()}
        elif key in _DATA_KEYS:
            cleaned[key] = value
        else:
            cleaned[key] = _clean(value, definitions, expanding)
    return cleaned


def _identity(message: str) -> str:
    return message


class ToolRegistry:
    """The tools one conversation may call, and the limits they run under."""

    def __init__(
        self,
        tools: Iterable[Tool] = (),
        *,
        timeout: float = 10.0,
        max_output_chars: int = 4000,
        translate: Callable[[str], str] = _identity,
        executor: concurrent.futures.Executor | None = None,
    ) -> None:
        self._tools: dict[str, Tool] = {}
        for item in tools:
            if item.name in self._tools:
                raise ValueError(f"Two tools are named {item.name}.")
            self._tools[item.name] = item
        if timeout <= 0:
            raise ValueError("A tool's time limit must be above 0 seconds.")
        if max_output_chars < MIN_OUTPUT_CHARS:
            raise ValueError(f"The output limit must be at least {MIN_OUTPUT_CHARS} characters.")
        self.timeout = timeout
        self.max_output_chars = max_output_chars
        self._translate = translate
        self._executor = executor

    def __bool__(self) -> bool:
        """Whether any tool is enabled."""
        return bool(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def names(self) -> list[str]:
        """The tools' names, in the order they were given."""
        return list(self._tools)

    def declarations(self) -> list[dict[str, Any]]:
        """The `tools` of a session.update: `{"type": "function", "name", "description", "parameters"}` each."""
        return [item.declaration() for item in self._tools.values()]

    def working_text(self, name: str) -> str:
        """What the page says while the tool runs, in the active language."""
        item = self._tools.get(name)
        if item is not None and item.working_text:
            return str(item.working_text)
        return self._translate(WORKING)

    def label(self, name: str) -> str:
        """The tool's name for people: its label, or its name."""
        item = self._tools.get(name)
        return str(item.label) if item is not None and item.label else name

    async def run(self, name: str, arguments: str, context: ToolContext) -> ToolResult:
        """Validate the arguments, run the tool in a thread under its time limit, and size its output.

        Never raises but CancelledError: bad arguments, an unknown tool, an exception and a timeout each
        become a result with ok=False whose output tells the model what happened.
        """
        item = self._tools.get(name)
        if item is None:
            shown = str(name)[:64]
            known = ", ".join(self._tools) or "none"
            return self._failure(f"There is no tool named {shown!r}. Tools: {known}.", UNKNOWN_TOOL, shown)
        try:
            kwargs = item.parse(arguments)
        except ToolArgumentsError as exc:
            return self._failure(f"Invalid arguments for {name}: {exc}.", BAD_ARGUMENTS, self.label(name))
        call_kwargs = dict(kwargs)
        if item.context_parameter:
            call_kwargs[item.context_parameter] = context
        timeout = item.timeout if item.timeout is not None else self.timeout
        # The caller's context (its active language, say) goes with the call into the thread.
        call = functools.partial(contextvars.copy_context().run, item.function, **call_kwargs)
        future = asyncio.get_running_loop().run_in_executor(self._executor or shared_executor(), call)
        try:
            # asyncio.wait, not wait_for: a TimeoutError the tool itself raises is its failure, not ours.
            done, _ = await asyncio.wait({future}, timeout=timeout)
        except asyncio.CancelledError:
            future.cancel()  # a call still waiting for a thread never starts; a running one is left to finish
            raise
        if not done:
            future.cancel()
            # The thread runs on until the function returns: see MAX_THREADS.
            logger.warning("Tool %s took more than %s s (conversation %s); its result will be dropped.",
                           name, timeout, context.conversation_id)
            return self._failure(f"{name} took longer than {timeout:g} seconds and was abandoned.",
                                 TOOL_TIMED_OUT, self.label(name))
        try:
            value = future.result()
        except ToolError as exc:
            logger.info("Tool %s refused (conversation %s): %s", name, context.conversation_id, exc)
            return self._failure(f"{name} failed: {exc}", TOOL_FAILED, self.label(name))
        except Exception:
            # The traceback is for the log; the model gets no internals.
            logger.exception("Tool %s raised (conversation %s).", name, context.conversation_id)
            return self._failure(f"{name} failed with an internal error.", TOOL_FAILED, self.label(name))
        try:
            output = pydantic_core.to_json(value).decode()
        except (pydantic_core.PydanticSerializationError, ValueError, TypeError, RecursionError):
            logger.exception("Tool %s returned something that is not JSON (conversation %s).",
                             name, context.conversation_id)
            return self._failure(f"{name} failed with an internal error.", TOOL_FAILED, self.label(name))
        return ToolResult(output=self._limited(output), ok=True, summary=self._summary(item, value, kwargs))

    def _summary(self, item: Tool, value: Any, kwargs: dict[str, Any]) -> str:
        """The tool's own plain words for what it did, or a generic line when it has none or they fail."""
        if item.summarize is not None:
            try:
                return str(item.summarize(value, kwargs))
            except Exception:
                logger.exception("The summary of tool %s failed.", item.name)
        return self._translate(TOOL_DONE) % {"tool": self.label(item.name)}

    def _failure(self, message: str, summary: str, tool_name: str) -> ToolResult:
        """An error result: the message for the model as JSON (cut to fit), the summary translated for the page."""
        output = _longest_fit(lambda keep: json.dumps({"error": _cut(message, keep)}, ensure_ascii=False),
                              len(message), self.max_output_chars)
        return ToolResult(output=output, ok=False, summary=self._translate(summary) % {"tool": tool_name})

    def _limited(self, output: str) -> str:
        """The output, or, past the limit, a JSON object with its beginning that fits (still valid JSON)."""
        if len(output) <= self.max_output_chars:
            return output
        return _longest_fit(
            lambda keep: json.dumps(
                {"truncated": True, "note": f"Only the first {keep} of {len(output)} characters of the output.",
                 "partial_output": output[:keep]},
                ensure_ascii=False,
            ),
            len(output), self.max_output_chars,
        )


def _cut(text: str, keep: int) -> str:
    """The text's first `keep` characters, with an ellipsis when that is not all of it."""
    return text if keep >= len(text) else text[:keep] + "…"


def _longest_fit(render: Callable[[int], str], length: int, limit: int) -> str:
    """render(keep) for the largest keep (up to length) whose text fits the limit; escaping makes it a search.

    Quotes and backslashes double when escaped, so how much fits depends on what is kept. The rendered
    length grows with keep, so a binary search finds it in a few renders.
    """
    low, high = 0, min(length, limit)
    while low < high:
        middle = (low + high + 1) // 2
        if len(render(middle)) <= limit:
            low = middle
        else:
            high = middle - 1
    return render(low)

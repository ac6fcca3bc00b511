"""The ``format`` check: did the answer honour the JSON, schema or tool contract it was given?

Also a small JSON Schema validator covering what chat APIs use for structured outputs and
tool parameters (``type``, ``properties``, ``required``, ``additionalProperties``, ``items``,
``enum``, ``const``, ``anyOf``, local ``$ref``). Other keywords are ignored, so an answer is
never rejected for a rule this validator does not understand. Why not ``jsonschema``: see
``docs/cascade-checks.md``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from thrifty.cascade.checks import (
    JudgeCall,
    OptionReader,
    Verdict,
    answer_message,
    text_of,
)

_MAX_ERRORS = 5
_MAX_DEPTH = 64  # nesting of schema steps; stops a $ref cycle that consumes no data

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "null": (type(None),),
    "number": (int, float),
    "integer": (int, float),
}


def schema_errors(instance: Any, schema: Any, *, root: Any = None) -> list[str]:
    """Up to ``_MAX_ERRORS`` messages like ``"$.items[2].id: expected integer, got str"``."""
    errors: list[str] = []
    _validate(instance, schema, "$", root if root is not None else schema, errors, 0)
    return errors[:_MAX_ERRORS]


def _is_type(value: Any, name: str) -> bool:
    kinds = _TYPES.get(name)
    if kinds is None:
        return True  # unknown type name: do not reject for it
    if isinstance(value, bool) and name in ("number", "integer"):
        return False
    if name == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    return isinstance(value, kinds)


def _resolve(ref: str, root: Any) -> Any:
    """A local ``#/...`` reference into the root schema; ``None`` when it cannot be found."""
    if ref != "#" and not ref.startswith("#/"):
        return None
    node = root
    for raw in ref[2:].split("/") if ref != "#" else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _validate(value: Any, schema: Any, path: str, root: Any, errors: list[str], depth: int) -> None:
    if len(errors) >= _MAX_ERRORS or not isinstance(schema, dict):
        return  # ``true``/``{}``/non-dict schemas accept anything
    if depth > _MAX_DEPTH:
        errors.append(f"{path}: schema nests too deeply")
        return
    if isinstance(schema.get("$ref"), str):
        target = _resolve(schema["$ref"], root)
        if target is not None:
            _validate(value, target, path, root, errors, depth + 1)
    if not _check_simple(value, schema, path, errors):
        return
    if isinstance(schema.get("anyOf"), list) and not any(
        _accepts(value, option, root, depth + 1) for option in schema["anyOf"]
    ):
        errors.append(f"{path}: matches none of the anyOf alternatives")
    if isinstance(value, dict):
        _validate_object(value, schema, path, root, errors, depth)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            _validate(item, schema["items"], f"{path}[{index}]", root, errors, depth + 1)


def _accepts(value: Any, schema: Any, root: Any, depth: int) -> bool:
    found: list[str] = []
    _validate(value, schema, "$", root, found, depth)
    return not found


def _check_simple(value: Any, schema: dict[str, Any], path: str, errors: list[str]) -> bool:
    """``type``, ``enum`` and ``const``; False when the value's type is wrong (stop there)."""
    expected = schema.get("type")
    names = [expected] if isinstance(expected, str) else expected
    if isinstance(names, list) and not any(_is_type(value, n) for n in names):
        wanted = " or ".join(str(n) for n in names)
        errors.append(f"{path}: expected {wanted}, got {_kind(value)}")
        return False
    if isinstance(schema.get("enum"), list) and not _contains(schema["enum"], value):
        errors.append(f"{path}: {_short(value)} is not one of {_short(schema['enum'])}")
    if "const" in schema and not _same(schema["const"], value):
        errors.append(f"{path}: expected {_short(schema['const'])}, got {_short(value)}")
    return True


def _validate_object(
    value: dict[str, Any],
    schema: dict[str, Any],
    path: str,
    root: Any,
    errors: list[str],
    depth: int,
) -> None:
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    for key in schema.get("required") or []:
        if isinstance(key, str) and key not in value:
            errors.append(f"{path}: missing required property {key!r}")
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            _validate(item, properties[key], f"{path}.{key}", root, errors, depth + 1)
        elif extra is False:
            errors.append(f"{path}: unexpected property {key!r}")
        elif isinstance(extra, dict):
            _validate(item, extra, f"{path}.{key}", root, errors, depth + 1)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``True`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _contains(options: list[Any], value: Any) -> bool:
    return any(_same(option, value) for option in options)


def _kind(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _parse_object(text: str) -> tuple[dict[str, Any] | None, str]:
    """The JSON object in ``text``, or ``None`` and why not."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        fenced = text.lstrip().startswith("```")
        return None, f"invalid JSON{' (wrapped in a code fence)' if fenced else ''}: {exc}"
    if not isinstance(value, dict):
        return None, f"JSON is {_kind(value)}, not an object"
    return value, ""


class FormatCheck:
    """Hard-fail an answer that breaks the request's JSON mode, JSON schema or tool list.

    Abstains when the request asked for no format (no ``response_format`` of type
    ``json_object``/``json_schema``, and no ``tools`` or no tool calls in the answer).
    """

    name = "format"
    needs_logprobs = False

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> FormatCheck:
        OptionReader(cls.name, options).done()
        return cls()

    async def __call__(
        self, request: dict[str, Any], response: dict[str, Any], judge: JudgeCall | None
    ) -> Verdict | None:
        return self.check(request, response)

    def check(self, request: Mapping[str, Any], response: Mapping[str, Any]) -> Verdict | None:
        """The same as calling the check, synchronously (nothing here awaits)."""
        message = answer_message(response)
        calls = message.get("tool_calls")
        if calls:
            return self._tool_calls(request, calls)
        if _tool_required(request):
            return self._fail("the request required a tool call; the answer made none")
        response_format = request.get("response_format")
        if not isinstance(response_format, dict):
            return None
        kind = response_format.get("type")
        if kind not in ("json_object", "json_schema"):
            return None
        content = message.get("content")
        if content is None:
            return self._fail("JSON was required; the answer has no content")
        value, why = _parse_object(text_of(content))
        if value is None:
            return self._fail(why)
        if kind == "json_object":
            return Verdict(self.name, 1.0, "valid JSON object")
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            return Verdict(self.name, 1.0, "valid JSON object (no schema given)")
        return self._against(value, schema, "JSON matches the schema", "schema: ")

    def _tool_calls(self, request: Mapping[str, Any], calls: Any) -> Verdict:
        tools = _tool_schemas(request)
        if not isinstance(calls, list):
            return self._fail("tool_calls is not a list")
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                continue  # not a function call (e.g. a custom tool): nothing to check
            name = function.get("name")
            if name not in tools:
                return self._fail(f"called unknown tool {name!r}")
            arguments = function.get("arguments")
            value, why = _parse_object(arguments if isinstance(arguments, str) else "")
            if value is None:
                return self._fail(f"tool {name!r} arguments: {why}")
            if tools[name] is not None:
                verdict = self._against(value, tools[name], "", f"tool {name!r} arguments: ")
                if verdict.hard_fail:
                    return verdict
        return Verdict(self.name, 1.0, f"{len(calls)} valid tool call(s)")

    def _against(self, value: Any, schema: dict[str, Any], ok: str, prefix: str) -> Verdict:
        errors = schema_errors(value, schema)
        if not errors:
            return Verdict(self.name, 1.0, ok)
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        return self._fail(f"{prefix}{errors[0]}{more}")

    def _fail(self, reason: str) -> Verdict:
        return Verdict(self.name, 0.0, reason, hard_fail=True)


def _tool_schemas(request: Mapping[str, Any]) -> dict[str, dict[str, Any] | None]:
    """Function tool name -> its parameters schema (``None`` when it declares none)."""
    tools: dict[str, dict[str, Any] | None] = {}
    for tool in request.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            parameters = function.get("parameters")
            tools[function["name"]] = parameters if isinstance(parameters, dict) else None
    return tools


def _tool_required(request: Mapping[str, Any]) -> bool:
    """``tool_choice`` of ``"required"`` or a named function, with tools given."""
    choice = request.get("tool_choice")
    named = isinstance(choice, dict) and choice.get("type") == "function"
    return bool(request.get("tools")) and (choice == "required" or named)

"""Reading a JSON request body: an object with typed fields, or a 400 that says what is wrong."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from webapp.converters import MAX_INT
from webapp.errors import Problem

MAX_DEPTH = 20


def _depth(value: Any, limit: int) -> int:
    """Nesting depth, counted without recursion so a hostile body cannot exhaust the stack."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        if isinstance(node, dict):
            stack.extend((child, level + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, level + 1) for child in node)
    return deepest


def _load(example: str) -> Any:
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw or b"null")
    except (ValueError, RecursionError):
        raise Problem(f"The body is not valid JSON; send JSON like {example}.") from None
    if _depth(body, MAX_DEPTH) > MAX_DEPTH:
        raise Problem(f"The JSON is nested more than {MAX_DEPTH} levels deep.")
    return body


def check_json_body() -> None:
    """Before a schema reads a JSON body: a clear 400 for text that is not JSON or is nested deeper
    than MAX_DEPTH (a hostile body must not exhaust the parser's stack)."""
    if request.mimetype == "application/json" and request.content_length != 0:
        _load("the operation's schema in /api/v1/openapi.json")


def json_object(example: str, **fields: type | tuple[type, ...]) -> dict[str, Any]:
    """The request's JSON object. `fields` maps a name to the type(s) it must have when present
    (booleans are never accepted as numbers, integers must fit a database column); `example` shows
    the caller a good body."""
    body = _load(example)
    if not isinstance(body, dict):
        raise Problem(f"Send a JSON object like {example}.")
    for name, kinds in fields.items():
        if name not in body or body[name] is None:
            continue
        value = body[name]
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            wanted = " or ".join(_TYPE_NAMES.get(kind, kind.__name__) for kind in kinds)
            raise Problem(f'"{name}" must be {wanted}.')
        if isinstance(value, int) and not isinstance(value, bool) and not -MAX_INT <= value <= MAX_INT:
            raise Problem(f'"{name}" is out of range (at most {MAX_INT}).')
    return body


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    float: "a number",
    dict: "an object",
    list: "a list",
}

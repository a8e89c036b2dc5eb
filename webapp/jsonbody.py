"""Reading a JSON request body: an object with typed fields, or a 400 that says what is wrong."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from webapp.converters import MAX_INT
from webapp.errors import Problem

MAX_DEPTH = 20
SCHEMA_EXAMPLE = "the operation's schema in /api/v1/openapi.json"


def _check(body: Any) -> None:
    """One walk without recursion (a hostile body must not exhaust the stack): the nesting depth,
    and text UTF-8 cannot hold. JSON may escape half of a surrogate pair ("\\ud83d") on its own;
    that is no character, and the tokenizer, the database driver and the page renderer all fail on it."""
    stack: list[tuple[Any, int, str | None]] = [(body, 1, None)]
    while stack:
        node, level, field = stack.pop()
        if level > MAX_DEPTH:
            raise Problem(f"The JSON is nested more than {MAX_DEPTH} levels deep.")
        if isinstance(node, dict):
            for key, child in node.items():
                if not _encodable(key):
                    raise Problem(_NOT_UNICODE.format(what="A field name"))
                stack.append((child, level + 1, field or key))  # messages name the top-level field
        elif isinstance(node, list):
            stack.extend((child, level + 1, field) for child in node)
        elif isinstance(node, str) and not _encodable(node):
            raise Problem(_NOT_UNICODE.format(what=f'"{field}"' if field else "The body"))


_NOT_UNICODE = (
    "{what} is not valid Unicode text: it holds half of a surrogate pair (an escape such as \\ud83d "
    "without its partner). Send whole characters."
)


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_json(mimetype: str) -> bool:
    """application/json, or a type built on it (application/merge-patch+json), as webargs reads them."""
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def json_body(example: str) -> Any:
    """The request's JSON body, any shape, or a Problem saying what is wrong: 415 for a body sent as
    another type (it was once read as no body at all, and a PUT answered 200 changing nothing), 400
    for text that is not JSON, is nested too deep or is not Unicode. `example` shows a good body."""
    raw = request.get_data(cache=True)
    if raw and not is_json(request.mimetype):
        raise Problem(f"Send the body as JSON (Content-Type: application/json), like {example}.", 415)
    try:
        body = json.loads(raw or b"null")
    except (ValueError, RecursionError):
        raise Problem(f"The body is not valid JSON; send JSON like {example}.") from None
    _check(body)
    return body


def check_json_body() -> None:
    """Before a schema reads a JSON body: a clear 400 for text that is not JSON, is nested deeper than
    MAX_DEPTH (a hostile body must not exhaust the parser's stack) or holds text that is not Unicode."""
    if is_json(request.mimetype) and request.content_length != 0:
        json_body(SCHEMA_EXAMPLE)


def json_object(example: str, **fields: type | tuple[type, ...]) -> dict[str, Any]:
    """The request's JSON object. `fields` maps a name to the type(s) it must have when present
    (booleans are never accepted as numbers, integers must fit a database column); `example` shows
    the caller a good body."""
    body = json_body(example)
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

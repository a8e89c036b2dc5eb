"""Numbers from requests, bounded to what the databases hold: a larger id is 'not found', a larger field a 400."""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter

# The largest value an INTEGER column holds on PostgreSQL (SQLite's holds up to 2^63 - 1, and Python
# ints beyond that overflow its driver): no row can have a larger id, and no stored count can be larger.
MAX_INT = 2**31 - 1


class BoundedInt(IntegerConverter):
    """`<int:...>` in every route: 0 .. MAX_INT unless the rule says otherwise, so /images/99999999999999999999
    is a 404 rather than an OverflowError deep in the database driver."""

    def __init__(
        self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = None, signed: bool = False
    ):  # noqa: A002
        super().__init__(
            map,
            fixed_digits=fixed_digits,
            min=(-MAX_INT if signed else 0) if min is None else min,
            max=MAX_INT if max is None else max,
            signed=signed,
        )


def bounded_int(value: str) -> int:
    """An integer form or query field (`request.form.get(name, type=bounded_int)`): out of range reads as
    missing, exactly like text that is not a number."""
    number = int(value)
    if not -MAX_INT <= number <= MAX_INT:
        raise ValueError(f"{value!r} is out of range")
    return number


def register(app: Flask) -> None:
    """Call before any blueprint is registered: rules bind their converter when they are added."""
    app.url_map.converters["int"] = BoundedInt

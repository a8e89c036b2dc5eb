"""The SQL statements a block of code sends, by database: page-cost tests count them, so a query per
model version or per study shows as a count that grows with the data."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url


@dataclass
class Statements:
    """Statements sent while counting, by database file (the app's and MLflow's are both SQLite here)."""

    sent: list[tuple[str, str]] = field(default_factory=list)  # (database, SQL)

    def to(self, uri: str) -> list[str]:
        """The statements sent to the database at `uri` (a SQLAlchemy or MLflow tracking URI)."""
        database = make_url(uri).database
        return [sql for where, sql in self.sent if where == database]


@contextmanager
def counted() -> Iterator[Statements]:
    """Every statement any engine of this process sends inside the block."""
    found = Statements()

    def record(connection, cursor, statement, parameters, context, executemany) -> None:
        found.sent.append((connection.engine.url.database, statement))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield found
    finally:
        event.remove(Engine, "before_cursor_execute", record)

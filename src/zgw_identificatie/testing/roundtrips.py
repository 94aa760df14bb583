"""Count the round trips to PostgreSQL (psycopg 3) an engine makes: for the tests and the benchmark."""

from __future__ import annotations

from typing import Any

import psycopg
import sqlalchemy as sa


class RoundTrips:
    """Counts what goes over the wire: every statement; the BEGIN psycopg sends before the first
    statement of a transaction; a COMMIT or ROLLBACK (including the pool's reset on return) only when
    a transaction is open; and any ping. ``statements`` lists them in order, for a failure message."""

    def __init__(self, engine: sa.Engine) -> None:
        self.statements: list[str] = []
        idle = psycopg.pq.TransactionStatus.IDLE

        def on_statement(conn: sa.Connection, cursor: Any, statement: str, *args: Any) -> None:
            dbapi: Any = conn.connection.dbapi_connection
            if not dbapi.autocommit and dbapi.info.transaction_status == idle:
                self.statements.append("BEGIN")
            self.statements.append(statement.split("\n")[0][:70])

        def on_end(name: str) -> Any:
            def listener(conn: sa.Connection) -> None:
                dbapi: Any = conn.connection.dbapi_connection
                if dbapi.info.transaction_status != idle:
                    self.statements.append(name)

            return listener

        def on_reset(dbapi_conn: Any, record: Any, reset_state: Any) -> None:
            if dbapi_conn.info.transaction_status != idle:
                self.statements.append("ROLLBACK (reset)")

        sa.event.listen(engine, "before_cursor_execute", on_statement)
        sa.event.listen(engine, "commit", on_end("COMMIT"))
        sa.event.listen(engine, "rollback", on_end("ROLLBACK"))
        sa.event.listen(engine.pool, "reset", on_reset)
        ping = engine.dialect.do_ping

        def counted_ping(dbapi_conn: Any) -> bool:
            self.statements.append("PING")
            return ping(dbapi_conn)

        engine.dialect.do_ping = counted_ping  # type: ignore[method-assign,assignment]

    def __len__(self) -> int:
        return len(self.statements)

    def without(self, table: str) -> list[str]:
        """The statements less every transaction (BEGIN … COMMIT/ROLLBACK) or lone statement that touches
        ``table``: e.g. the DigiD simulator's own state, which is DigiD's cost in the demo, not the service's."""
        kept: list[str] = []
        group: list[str] = []
        for statement in self.statements:
            if statement == "BEGIN" or group:
                group.append(statement)
                if statement.startswith(("COMMIT", "ROLLBACK")):
                    if not any(table in s for s in group):
                        kept += group
                    group = []
            elif table not in statement:
                kept.append(statement)
        return kept + group

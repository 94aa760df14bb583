"""Count the round trips to PostgreSQL (psycopg 3) an engine makes: for the tests and the benchmark."""

from __future__ import annotations

from typing import Any

import psycopg
import sqlalchemy as sa


class RoundTrips:
    """Counts what goes over the wire: every statement; the BEGIN psycopg sends before the first
    statement of a transaction; a COMMIT or ROLLBACK (including the pool's reset on return) only when
    a transaction is open; and any ping. ``statements`` lists them in order, for a failure message.

    Statements are counted at the psycopg cursor (every connection checked out of the engine's pool gets a
    counting cursor class), so statements the store runs on the DBAPI connection itself count as well as
    those SQLAlchemy runs."""

    def __init__(self, engine: sa.Engine) -> None:
        self.statements: list[str] = []
        idle = psycopg.pq.TransactionStatus.IDLE
        statements = self.statements

        def seen(conn: psycopg.Connection[Any], query: Any) -> None:
            if not conn.autocommit and conn.info.transaction_status == idle:
                statements.append("BEGIN")
            text = query.decode() if isinstance(query, bytes) else str(query)
            statements.append(text.split("\n")[0][:70])

        class CountingCursor(psycopg.Cursor[Any]):
            def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
                seen(self.connection, query)
                return super().execute(query, *args, **kwargs)

            def executemany(self, query: Any, *args: Any, **kwargs: Any) -> Any:
                seen(self.connection, query)  # one pipeline: one round trip
                return super().executemany(query, *args, **kwargs)

        def on_checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
            dbapi_conn.cursor_factory = CountingCursor

        def on_end(name: str) -> Any:
            def listener(conn: sa.Connection) -> None:
                dbapi: Any = conn.connection.dbapi_connection
                if dbapi.info.transaction_status != idle:
                    statements.append(name)

            return listener

        def on_reset(dbapi_conn: Any, record: Any, reset_state: Any) -> None:
            if dbapi_conn.info.transaction_status != idle:
                statements.append("ROLLBACK (reset)")

        sa.event.listen(engine.pool, "checkout", on_checkout)
        sa.event.listen(engine, "commit", on_end("COMMIT"))
        sa.event.listen(engine, "rollback", on_end("ROLLBACK"))
        sa.event.listen(engine.pool, "reset", on_reset)
        ping = engine.dialect.do_ping

        def counted_ping(dbapi_conn: Any) -> bool:
            statements.append("PING")
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

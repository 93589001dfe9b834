"""Store-specific adjustments to eventsourcing's recorders.

PostgreSQL: eventsourcing's application recorder sends all of a transaction's events as one
array parameter inside a psycopg pipeline; with a fact file's worth of events (megabytes) that
exchange can stall for ever (the client and server each wait for the other; see psycopg issue
#685). `ChunkedPostgresApplicationRecorder` writes the same rows with the same statement, table
lock and notification, in chunks, in one ordinary transaction: still all or nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder

CHUNK = 1000


class ChunkedPostgresApplicationRecorder(PostgresApplicationRecorder):
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        notification_ids: list[int] = []
        with self.datastore.get_connection() as connection, connection.transaction():
            with connection.cursor() as cursor:
                self._insert_events(cursor, stored_events, **kwargs)
                if stored_events:
                    self._lock_table(cursor)
                    self._notify_channel(cursor)
                for start in range(0, len(stored_events), CHUNK):
                    chunk = stored_events[start : start + CHUNK]
                    PostgresAggregateRecorder._insert_stored_events(self, cursor, chunk, **kwargs)
                    notification_ids.extend(self._fetch_ids_after_insert_events(cursor, chunk, **kwargs) or [])
        return notification_ids

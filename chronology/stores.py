"""Store-specific adjustments to eventsourcing's recorders.

PostgreSQL: eventsourcing's application recorder sends all of a transaction's events as one
array of a composite type inside a psycopg pipeline. With a fact file's worth of events
(megabytes) that exchange can stall for ever (the client and server each wait for the other;
psycopg issue #685), and building and parsing the composite array is most of an ingest's time.
`CopyingPostgresApplicationRecorder` writes the same rows into the same table with COPY, under
the same table lock and with the same notification, in one ordinary transaction: still all or
nothing, and a duplicate still raises eventsourcing's `IntegrityError`. A few events (an
analyst's correction) go in with eventsourcing's own statement instead, in fewer round trips.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import ProgrammingError, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

COPY_FROM = 100
"""Events in one transaction from which COPY is used."""


class CopyingPostgresApplicationRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        table = SQL("{0}.{1}").format(Identifier(self.datastore.schema), Identifier(self.events_table_name))
        self.copy_statement = SQL(
            "COPY {0} (originator_id, originator_version, topic, state) FROM STDIN (FORMAT BINARY)"
        ).format(table)
        self.last_id_statement = SQL("SELECT COALESCE(MAX(notification_id), 0) AS last FROM {0}").format(table)
        self.ids_after_statement = SQL(
            "SELECT notification_id FROM {0} WHERE notification_id > %s ORDER BY notification_id"
        ).format(table)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        with self.datastore.get_connection() as connection, connection.transaction():
            with connection.cursor() as cursor:
                self._insert_events(cursor, stored_events, **kwargs)
                self._lock_table(cursor)  # no other writer until commit: the rows after `last` are ours
                self._notify_channel(cursor)
                if len(stored_events) < COPY_FROM:  # the base insert: the lock and notice are taken
                    PostgresAggregateRecorder._insert_stored_events(self, cursor, stored_events, **kwargs)
                    return self._fetch_ids_after_insert_events(cursor, stored_events, **kwargs)
                last = cursor.execute(self.last_id_statement).fetchone()["last"]
                self.copy_events(cursor, stored_events)
                # Not simply the next len(stored_events) numbers: a rolled-back insert leaves a gap.
                ids = [row["notification_id"] for row in cursor.execute(self.ids_after_statement, (last,))]
        if len(ids) != len(stored_events):  # the table lock makes this impossible
            raise ProgrammingError(f"expected {len(stored_events)} notification ids, found {len(ids)}")
        return ids

    def copy_events(self, cursor: Any, stored_events: Sequence[StoredEvent]) -> None:
        """Write the rows with COPY in the caller's transaction, which holds the table lock
        (`insert_events`, and `chron log import`'s one transaction)."""
        with cursor.copy(self.copy_statement) as copy:
            copy.set_types([self.datastore.originator_id_type, "int8", "text", "bytea"])
            for event in stored_events:
                copy.write_row((event.originator_id, event.originator_version, event.topic, event.state))

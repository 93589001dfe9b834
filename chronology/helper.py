"""The view-building helper process's side of `chronology.parallel`: `python -m chronology.helper`.

It reads batches of incidents from its stdin and writes each batch's views to its stdout, as
length-prefixed pickles, until its input ends. It imports only what building a view takes, so
that it is ready soon after the rebuild that starts it (a rebuild of 10,000 claims takes about
a tenth of a second); the calling side, with its threads and pipes, is `chronology.parallel`.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any
from uuid import UUID

from chronology.bestview import content_digest, view_body
from chronology.records import Claim, Link, Source, decode_claims
from chronology.resolution import Policy

Incident = tuple[str, list[Claim] | None, tuple[bytes, ...], tuple[Link, ...], tuple[str, ...]]
"""(slug, its claims or None when the slug was merged away, the same claims as `encode_claims`
bytes, one per slug they were recorded under (the incident's own, then its aliases'), links,
aliases)."""
Job = tuple[str, tuple[bytes, ...] | None, tuple[Link, ...], tuple[str, ...]]
"""An `Incident` as sent to the helper: its claims only as bytes (None: merged away)."""
Built = tuple[str, tuple[str, str, bytes] | None]
"""(slug, (sort date, digest, content JSON) or None: drop the view)."""

STARTED = pickle.dumps((None, None))
"""What the helper says on starting a batch, before it returns it as (True, views) or (False,
the error)."""


def build_batch(incidents: Sequence[Incident], sources: Mapping[UUID, Source], policy: Policy) -> list[Built]:
    """The views of a batch of incidents, as stored (in the helper, or in the caller)."""
    built: list[Built] = []
    for slug, claims, _encoded, links, aliases in incidents:
        if claims is None:
            built.append((slug, None))
            continue
        sort_date, body = view_body(slug, claims, sources, links, aliases, policy)
        built.append((slug, (sort_date, content_digest(body), body)))
    return built


def write_frame(pipe: IO[bytes], frame: bytes) -> None:
    pipe.write(struct.pack("<Q", len(frame)))
    pipe.write(frame)
    pipe.flush()


def read_frame(pipe: IO[bytes]) -> bytes | None:
    header = pipe.read(8)
    if len(header) < 8:
        return None
    (size,) = struct.unpack("<Q", header)
    frame = pipe.read(size)
    return frame if len(frame) == size else None


def serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """The helper's loop: a batch in, its views (or the error) out, until the input ends."""
    sources: dict[UUID, Source] = {}
    while (frame := read_frame(requests)) is not None:
        write_frame(replies, STARTED)
        try:
            jobs: list[Job]
            jobs, news, policy = pickle.loads(frame)
            sources.update(news)
            incidents = [
                (
                    slug,
                    None if encoded is None else [c for part in encoded for c in decode_claims(part)],
                    (),
                    links,
                    aliases,
                )
                for slug, encoded, links, aliases in jobs
            ]
            reply: tuple[bool, Any] = (True, build_batch(incidents, sources, policy))
        except Exception:
            import traceback  # only when a batch fails: the helper starts without it

            reply = (False, traceback.format_exc())
        write_frame(replies, pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    import gc

    gc.disable()  # as in the fold: many small objects, no cycles
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print cannot corrupt a reply
    serve(sys.stdin.buffer, replies)

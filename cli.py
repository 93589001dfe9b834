"""`chron`: the command line of Chronology. One click group; each command is a thin shell over
`chronology` (archive = appending, replay = reading, plugins = exporters and policies)."""

from __future__ import annotations

import datetime as dt
import errno
import io
import itertools
import os
import socket
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO
from uuid import UUID

import click
import orjson

from chronology import __version__
from chronology.archive import RANKS, RELATIONS, Archive
from chronology.errors import (
    ChronologyError,
    FactFileError,
    OutputError,
    ServeError,
    UnknownReference,
    store_unavailable,
)
from chronology.factfile import fact_file_paths, read_fact_file
from chronology.plugins import load_plugins
from chronology.projection import Projection, collector_paused
from chronology.render import chronology_text, incident_count, incident_text, json_list_pieces, log_text, summary
from chronology.replay import (
    DEFAULT_POLICY,
    Filters,
    current_view,
    difference_from_a_full_replay,
    field_history,
    timeline_pages,
)

_WRITE_FAILURES = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS, errno.EBADF}
"""What writing a command's output can fail with (a full disk, a read-only one)."""


class ChronGroup(click.Group):
    """Turns every `ChronologyError`, a store that cannot be used just now (a dropped
    connection, a lock another process held too long), and output that cannot be written (a
    full disk) into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a write that fails is reported here, not at the interpreter's exit
            return result
        except ChronologyError as error:
            click.echo(f"error: {error}", err=True)
            ctx.exit(1)
        except BrokenPipeError:
            raise  # a reader that stopped early (`chron replay | head`): click exits quietly
        except OSError as error:
            if error.errno not in _WRITE_FAILURES or error.filename is not None:
                raise
            click.echo(f"error: cannot write to standard output: {error.strerror}", err=True)
            ctx.exit(1)
        except Exception as error:
            if not store_unavailable(error):
                raise
            reason = " ".join(str(error).split())
            click.echo(
                f"error: the store failed: {reason}. A change under way is written whole or not at all:"
                " run the command again.",
                err=True,
            )
            ctx.exit(1)


def _json(data: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    sys.stdout.buffer.write(b"\n")


def _json_list(items: Iterable[Any]) -> None:
    """`_json(list(items))`, written an item at a time (the same bytes)."""
    sys.stdout.buffer.writelines(json_list_pieces(items))
    sys.stdout.buffer.write(b"\n")


@contextmanager
def _destination(output: Path | None) -> Iterator[BinaryIO]:
    """Where a command writes: standard output, or the file `output`, which appears under its
    name only once complete (written as NAME.partial, renamed at the end, removed if the
    command fails; through a symbolic link, next to the file it names); a device or a named
    pipe is written directly."""
    if output is None:
        yield sys.stdout.buffer
        return
    try:
        if output.exists() and not output.is_file():  # a device or a pipe (/dev/stdout): written as it is
            with open(output, "wb") as out:
                yield out
            return
        target = output.resolve() if output.is_symlink() else output  # the link stays, its file is replaced
        partial = target.with_name(target.name + ".partial")
        try:
            with open(partial, "wb") as out:
                yield out
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    except BrokenPipeError:
        raise
    except OSError as error:
        raise OutputError(f"cannot write to {output}: {error.strerror}") from error


def _archive(ctx: click.Context) -> Archive:
    root = ctx.find_root()
    if "archive" not in root.meta:
        root.meta["archive"] = Archive(root.params.get("store"))
    return root.meta["archive"]


def _plugins(ctx: click.Context):
    root = ctx.find_root()
    if "plugins" not in root.meta:
        plugins = root.obj if root.obj is not None else load_plugins()
        for name, error in sorted(plugins.failures.items()):
            click.echo(f"warning: plugin '{name}' was not loaded: {error}", err=True)
        root.meta["plugins"] = plugins
    return root.meta["plugins"]


def _when(value: str | None, option: str) -> dt.datetime | None:
    """--as-of: an ISO datetime (UTC if no zone) or a date (its end, UTC)."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            return dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC)
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"expected YYYY-MM-DD or an ISO datetime, found {value!r}", param_hint=option
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _day(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected YYYY-MM-DD, found {value!r}", param_hint=option) from None


def _claim_id(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise UnknownReference(f"'{value}' is not a claim id (a UUID, as `chron show` prints)") from None


@click.group(cls=ChronGroup)
@click.version_option(__version__, prog_name="chron")
@click.option(
    "--store",
    envvar="CHRON_STORE",
    metavar="PATH|URL",
    help="SQLite file (default ./chron.db) or postgresql://user@host/db. Env: CHRON_STORE.",
)
@click.pass_context
def cli(ctx: click.Context, store: str | None) -> None:
    """Chronology: turn conflicting reports into a trustworthy, replayable chronology.

    Record what each source said (`chron ingest`), rebuild the best view of every incident
    (`chron replay`, `chron show`), correct it with new events (`chron retract`, `rank`, `merge`,
    `link`, `grade`) and publish it (`chron export`, `chron serve`).
    """
    ctx.call_on_close(lambda: ctx.meta.get("archive") and ctx.meta["archive"].close())


# --- appending -------------------------------------------------------------------------------


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the files; append nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def ingest(ctx: click.Context, paths: tuple[Path, ...], dry_run: bool, as_json: bool) -> None:
    """Record the facts in fact files (.toml, .jsonl) or folders of them.

    Each file is checked whole first and appended in one transaction: all of it or nothing.
    Facts already in the log are skipped, so ingesting a file again appends nothing.
    """
    files = fact_file_paths(list(paths))
    if not files:
        raise FactFileError(", ".join(map(str, paths)), "no .toml or .jsonl fact files found")
    checked = [read_fact_file(path) for path in files]  # every file checked before any append
    archive = _archive(ctx)
    reports = [archive.ingest(fact_file, dry_run=dry_run) for fact_file in checked]
    if not dry_run:
        Projection(archive).catch_up().close()
    if as_json:
        _json([vars(r) | {"events_added": r.events_added} for r in reports])
        return
    for report in reports:
        click.echo(
            f"{report.path}: {'would add' if dry_run else 'added'} {report.sources_added} source(s),"
            f" {report.claims_added} claim(s); already present {report.sources_present} source(s),"
            f" {report.claims_present} claim(s)"
        )
    added = sum(r.events_added for r in reports)
    click.echo(f"{len(reports)} file(s), {added} event(s) {'would be ' if dry_run else ''}appended")


@cli.command()
@click.argument("claim")
@click.option("--reason", required=True, help="Why (mis-coded, source corrected itself, ...).")
@click.pass_context
def retract(ctx: click.Context, claim: str, reason: str) -> None:
    """Take a claim out of the best view (ClaimRetracted). It stays in the log."""
    _archive(ctx).retract(_claim_id(claim), reason)
    click.echo(f"retracted {claim}")


@cli.command()
@click.argument("claim")
@click.argument("rank", type=click.Choice(RANKS))
@click.option("--reason", required=True, help="Why the claim is preferred or deprecated.")
@click.pass_context
def rank(ctx: click.Context, claim: str, rank: str, reason: str) -> None:
    """Mark a claim preferred, normal or deprecated (ClaimRanked)."""
    _archive(ctx).rank(_claim_id(claim), rank, reason)
    click.echo(f"ranked {claim} {rank}")


@cli.command()
@click.argument("old")
@click.argument("new")
@click.option("--reason", required=True, help="Why the two slugs are one incident.")
@click.pass_context
def merge(ctx: click.Context, old: str, new: str, reason: str) -> None:
    """Declare incident OLD the same as NEW (IncidentsMerged); OLD becomes an alias."""
    _archive(ctx).merge(old, new, reason)
    click.echo(f"merged {old} into {new}")


@cli.command()
@click.argument("incident")
@click.argument("relation", type=click.Choice(RELATIONS))
@click.argument("other")
@click.option("--reason", default="", help="Why the incidents are related.")
@click.pass_context
def link(ctx: click.Context, incident: str, relation: str, other: str, reason: str) -> None:
    """Relate two incidents: INCIDENT responds_to|part_of|follows OTHER (IncidentLinked)."""
    _archive(ctx).link(incident, relation, other, reason)
    click.echo(f"{incident} {relation} {other}")


@cli.command()
@click.argument("source")
@click.argument("grade", type=click.Choice(list("ABCDEF")))
@click.option("--reason", required=True, help="Why the reliability grade changes.")
@click.pass_context
def grade(ctx: click.Context, source: str, grade: str, reason: str) -> None:
    """Change a source's reliability grade, A-F (SourceGraded). SOURCE is its fact-file id."""
    _archive(ctx).grade(source, grade, reason)
    click.echo(f"graded {source} {grade}")


# --- reading ---------------------------------------------------------------------------------


def _policy_option(function):
    return click.option(
        "--policy",
        default=DEFAULT_POLICY,
        show_default=True,
        help="Resolution policy: balanced, conservative, informative, representative, or one a plugin adds.",
    )(function)


def _time_options(function):
    function = click.option("--known-at", metavar="DATE", help="Only claims whose source was published by DATE.")(
        function
    )
    return click.option("--as-of", metavar="TIME", help="Only events recorded by TIME (date or ISO datetime, UTC).")(
        function
    )


def _policy(ctx: click.Context, name: str):
    return _plugins(ctx).policy(name)


@cli.command("replay")
@_time_options
@_policy_option
@click.option("--json", "as_json", is_flag=True, help="Print the views as JSON.")
@click.option("--verify", is_flag=True, help="Also fold the log from position 0 and check it matches the stored view.")
@click.option(
    "--rebuild",
    is_flag=True,
    help="First drop the stored view and derive it again from the whole log (when --verify finds it differs,"
    " or it is damaged).",
)
@click.pass_context
def replay_command(
    ctx: click.Context,
    as_of: str | None,
    known_at: str | None,
    policy: str,
    as_json: bool,
    verify: bool,
    rebuild: bool,
) -> None:
    """Rebuild the chronology from the log and print it, incidents in date order."""
    archive = _archive(ctx)
    if rebuild:
        projection = Projection(archive)
        try:
            position = projection.rebuild().position()
        finally:
            projection.close()
        click.echo(f"rebuilt the stored view from the log, up to position {position}", err=True)
    pages = timeline_pages(
        archive,
        policy=policy,
        policy_function=_policy(ctx, policy),
        as_of=_when(as_of, "--as-of"),
        known_at=_day(known_at, "--known-at"),
    )
    with collector_paused():
        if as_json:
            _json_list(view.as_dict() for page in pages for view in page.incidents)
        else:
            count = 0
            for page in pages:
                click.echo(chronology_text(page.incidents, page.claims, page.sources), nl=False)
                count += len(page.incidents)
            click.echo(incident_count(count), nl=False)
    if verify:
        difference = difference_from_a_full_replay(archive)
        if difference is not None:
            raise ChronologyError(
                f"the stored view differs from a full replay of the log: {difference}."
                " `chron replay --rebuild` derives it again from the log"
            )
        click.echo("verified: the stored view is byte-identical to a full replay", err=True)


@cli.command()
@click.argument("incident")
@_time_options
@_policy_option
@click.option("--json", "as_json", is_flag=True, help="Print the view and its claims as JSON.")
@click.pass_context
def show(
    ctx: click.Context, incident: str, as_of: str | None, known_at: str | None, policy: str, as_json: bool
) -> None:
    """Show one incident's best view with every claim and its source, disputed fields first.

    With --as-of or --known-at, as the archive knew it then or as the public record had it on
    that day (only the incident's own events are folded)."""
    view, timeline = current_view(
        _archive(ctx),
        incident,
        policy,
        _policy(ctx, policy),
        as_of=_when(as_of, "--as-of"),
        known_at=_day(known_at, "--known-at"),
    )
    if as_json:
        claims = timeline.claims_of(view)
        _json(
            {
                "incident": view.as_dict(),
                "claims": [_claim_dict(c) for c in claims],
                "sources": [_source_dict(s) for s in timeline.sources_of(view)],
            }
        )
        return
    click.echo(incident_text(view, timeline.claims, timeline.sources), nl=False)


def _claim_dict(claim: Any) -> dict[str, Any]:
    data = claim._asdict()
    data["id"], data["source_id"] = str(claim.id), str(claim.source_id)
    data["recorded_at"] = claim.recorded_at.isoformat()
    return data


def _source_dict(source: Any) -> dict[str, Any]:
    from dataclasses import asdict

    data = asdict(source)
    data["id"] = str(source.id)
    data["published"] = source.published.isoformat()
    data["registered_at"] = source.registered_at.isoformat() if source.registered_at else None
    return data


@cli.command()
@click.argument("incident")
@click.argument("field", required=False)
@click.option(
    "--by",
    type=click.Choice(["record", "publication"]),
    default="record",
    show_default=True,
    help="Order changes by when claims were recorded or published.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the changes as JSON.")
@click.pass_context
def history(ctx: click.Context, incident: str, field: str | None, by: str, as_json: bool) -> None:
    """How an incident's best values changed as claims came in (one FIELD, or all)."""
    from chronology.fields import FieldProblem
    from chronology.render import describe

    try:
        changes = field_history(_archive(ctx), incident, field, by)
    except FieldProblem as error:
        raise UnknownReference(f"field '{field}': {error.message}") from None
    if as_json:
        _json(changes)
        return
    for change in changes:
        when = change.get("recorded_at") or change.get("published")
        position = f"#{change['position']}" if "position" in change else "published"
        best = describe(change["field"], change["best"], change["qualifier"])
        span = ""
        if change["low"] is not None and change["low"] != change["high"]:
            span = f" (range {change['low']}-{change['high']})"
        click.echo(
            f"{when}  {position:<10} {change['field']:<20} {best}{span}  {change['status']}"
            f"  {change['number_of_sources']} source(s)"
        )


@cli.group("log", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print events as JSON objects.")
@click.option("--after", type=click.IntRange(min=0), default=0, help="Start after this position.")
@click.option("--limit", type=click.IntRange(min=0), default=None, help="At most this many events.")
@click.pass_context
def log_group(ctx: click.Context, as_json: bool, after: int, limit: int | None) -> None:
    """List the raw events in log order: position, recorded time, type, summary."""
    if ctx.invoked_subcommand is not None:
        return
    events = _archive(ctx).read(after=after)
    if limit is not None:
        events = itertools.islice(events, limit)
    if as_json:
        _json_list(
            {
                "position": e.position,
                "recorded_at": e.recorded_at.isoformat(),
                "type": e.topic,
                "originator_id": str(e.originator_id),
                "version": e.version,
                "summary": summary(e.event),
            }
            for e in events
        )
        return
    while batch := list(itertools.islice(events, 1000)):  # any length, in the memory of a batch
        click.echo(log_text(batch), nl=False)


@log_group.command("export")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@click.pass_context
def log_export(ctx: click.Context, output: Path | None) -> None:
    """Write the whole log as JSON Lines (docs/log-format.md), for `chron log import`.

    The last line says how many events came, so a copy cut short is refused on import. With
    -o, the file appears under its name only once complete."""
    from chronology.transfer import export_log

    archive = _archive(ctx)
    with _destination(output) as out:
        count = export_log(archive, out)
    click.echo(f"exported {count} events", err=True)


@log_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def log_import(ctx: click.Context, path: Path) -> None:
    """Read a `chron log export` file into an empty store (SQLite or PostgreSQL).

    The whole file is checked first; then every event is written in one transaction, so a
    failed or interrupted import leaves the store empty, and a SQLite store the command made
    is removed again."""
    from chronology.transfer import import_log

    archive = _archive(ctx)
    try:
        count = import_log(archive, path)
    except BaseException:
        if archive.remove_if_unused():
            ctx.find_root().meta.pop("archive")
        raise
    Projection(archive).catch_up().close()
    click.echo(f"imported {count} events")


@log_group.command("verify")
@click.option(
    "--against",
    metavar="CHECKPOINT",
    help="A published checkpoint (COUNT:DIGEST, as `chron log checkpoint` prints) that the log must still extend.",
)
@click.pass_context
def log_verify(ctx: click.Context, against: str | None) -> None:
    """Recompute the log's digest chain; name the first position that does not match."""
    from chronology.integrity import Checkpoint, verify

    result = verify(_archive(ctx), Checkpoint.parse(against) if against else None)
    message = f"verified {result.checked} events; head {result.checkpoint}"
    if result.unchained:
        message += f"; {result.unchained} newer events not yet chained (any chron command chains them)"
    if against:
        message += f"; extends checkpoint {against}"
    click.echo(message)


@log_group.command("checkpoint")
@click.pass_context
def log_checkpoint(ctx: click.Context) -> None:
    """Print COUNT:DIGEST, the chain's head, to publish elsewhere (see `log verify --against`)."""
    from chronology.integrity import checkpoint

    click.echo(str(checkpoint(_archive(ctx))))


@cli.group()
def sources() -> None:
    """The archived documents behind the sources."""


@sources.command("attach")
@click.argument("source")
@click.argument("document", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def sources_attach(ctx: click.Context, source: str, document: Path) -> None:
    """Archive DOCUMENT (UTF-8 text) as the text of SOURCE, addressed by its sha256."""
    from chronology.evidence import attach

    digest = attach(_archive(ctx), source, document)
    click.echo(f"attached {document} to {source}: sha256 {digest}")


@cli.command("verify-evidence")
@click.option("--json", "as_json", is_flag=True, help="Print every claim's anchor as JSON.")
@click.pass_context
def verify_evidence(ctx: click.Context, as_json: bool) -> None:
    """Check every claim's quote against its source's archived document.

    Exact match (white space folded), else a bounded fuzzy match; otherwise the claim is
    reported orphaned and the exit status is 1. Claims whose source has no archived document
    are reported unanchored.
    """
    from dataclasses import asdict

    from chronology.evidence import check_evidence

    anchors = check_evidence(_archive(ctx))
    counts = {
        status: sum(a.status == status for a in anchors) for status in ("exact", "fuzzy", "orphaned", "unanchored")
    }
    if as_json:
        _json([asdict(a) for a in anchors])
    else:
        for anchor in anchors:
            if anchor.status in ("fuzzy", "orphaned"):
                click.echo(
                    f"{anchor.status:<9} {anchor.incident} {anchor.field} claim {anchor.claim_id}"
                    f' (score {anchor.score}): "{anchor.quote}"'
                )
        click.echo(", ".join(f"{n} {status}" for status, n in counts.items()))
    if counts["orphaned"]:
        ctx.exit(1)


# --- plugins and exports ---------------------------------------------------------------------


@cli.command("export")
@click.argument("format_name", metavar="FORMAT")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@click.option("--tag", "tags", multiple=True, help="Only incidents with this tag (repeatable).")
@click.option("--incident", "incidents", multiple=True, help="Only this incident (repeatable).")
@click.option("--since", metavar="DATE", help="Only incidents that may have happened on or after DATE.")
@click.option("--until", metavar="DATE", help="Only incidents that may have happened on or before DATE.")
@click.option("--title", default="Chronology", show_default=True, help="Title of the timeline.")
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="NAME=VALUE",
    help="An exporter option, e.g. table=claims for csv (repeatable).",
)
@_time_options
@_policy_option
@click.pass_context
def export_command(
    ctx: click.Context,
    format_name: str,
    output: Path | None,
    tags: tuple[str, ...],
    incidents: tuple[str, ...],
    since: str | None,
    until: str | None,
    title: str,
    options: tuple[str, ...],
    as_of: str | None,
    known_at: str | None,
    policy: str,
) -> None:
    """Export the timeline as FORMAT (ical, jsonld, csv, or one a plugin adds).

    Written a thousand incidents at a time by exporters that can (the built-in ones). With -o,
    the file appears under its name only once complete."""
    plugins = _plugins(ctx)
    plugins.exporter(format_name)  # unknown format: fail before any work
    parsed: dict[str, str] = {}
    for option in options:
        name, equals, value = option.partition("=")
        if not equals or not name:
            raise click.BadParameter(f"expected NAME=VALUE, found {option!r}", param_hint="--option")
        parsed[name.strip()] = value.strip()
    if incidents:  # a slug mistyped is an error, not an empty export
        _archive(ctx).known_incidents(*incidents)
    pages = timeline_pages(
        _archive(ctx),
        policy=policy,
        policy_function=_policy(ctx, policy),
        as_of=_when(as_of, "--as-of"),
        known_at=_day(known_at, "--known-at"),
        filters=Filters(tags=tags, incidents=incidents, since=_day(since, "--since"), until=_day(until, "--until")),
        title=title,
    )
    with collector_paused(), _destination(output) as out:
        for piece in plugins.export_pages(format_name, pages, parsed):
            out.write(piece)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: a free one, which is announced).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes sharing the store.",
)
@click.option(
    "--token",
    envvar="CHRON_FEED_TOKEN",
    metavar="SECRET",
    help="Serve everything under /SECRET/ only (private feeds). Env: CHRON_FEED_TOKEN.",
)
@click.option("--title", default="Chronology", show_default=True, help="Title of the feeds.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, token: str | None, title: str) -> None:
    """Serve every exporter as a live feed: /feeds/ical.ics, /feeds/jsonld, /feeds/csv, ...

    Read-only. New events (from any process) reach the feeds without a restart. The index page
    at / has webcal:// and https:// subscribe links. Each feed is rendered once per change to
    the log, however many subscribers ask for it at once; a render that takes over a minute (a
    very large archive) answers 503 with Retry-After, and the feed is ready for the retry. On
    PostgreSQL, connections the database drops (a restart, a failover) are made again; while it
    cannot be reached, requests get 503 with Retry-After.
    """
    import uvicorn

    archive = _archive(ctx)
    Projection(archive).catch_up().close()  # fail now, not at the first request
    os.environ["CHRON_STORE"] = archive.store
    os.environ["CHRON_FEED_TITLE"] = title
    if token:
        if len(token) < 16 or "/" in token:
            raise click.BadParameter("use at least 16 characters and no '/'", param_hint="--token")
        os.environ["CHRON_FEED_TOKEN"] = token
    else:
        os.environ.pop("CHRON_FEED_TOKEN", None)
    port = _port_to_listen_on(host, port)
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"serving {len(_plugins(ctx).exporters())} feeds on http://{shown}:{port}/" + ("<token>/" if token else ""),
        err=True,
    )
    uvicorn.run(
        "chronology.server:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
        timeout_keep_alive=5,
        limit_concurrency=256,
        h11_max_incomplete_event_size=16 * 1024,
    )


def _port_to_listen_on(host: str, port: int) -> int:
    """`port` (a free one for 0) once a socket could listen on it at `host`: an address in use
    or not this machine's is one clear error before anything is announced, not the server's
    log line after. The server then binds it itself."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
            probe.bind(address)
            probe.listen()
            return probe.getsockname()[1]
    except OSError as error:
        reason = error.strerror or str(error)
        raise ServeError(f"cannot listen on {host} port {port}: {reason}") from error


@cli.command()
@click.pass_context
def plugins(ctx: click.Context) -> None:
    """List the loaded plugins as JSON: name, distribution, version, hooks (and load errors)."""
    _json(_plugins(ctx).describe())


class _ClosedOutput(io.TextIOBase):
    """Standard output when the process was started without one (`chron replay >&-`): Python
    then has no `sys.stdout` and click would print nothing and succeed. Writing here fails as
    writing to a closed descriptor does, so the command says so (`ChronGroup`); nothing is
    buffered, so nothing is left to fail again at exit."""

    class _Bytes(io.BufferedIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data) -> int:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    buffer = _Bytes()

    def writable(self) -> bool:
        return True

    def write(self, text) -> int:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))


def main() -> None:
    if sys.stdout is None:
        sys.stdout = _ClosedOutput()
    plugins = load_plugins()
    for name, function in _command_hooks(plugins):
        try:
            function(cli=cli)
        except Exception as error:  # a broken plugin must not take the CLI down
            click.echo(f"warning: plugin '{name}' could not add commands: {error}", err=True)
    cli(prog_name="chron", obj=plugins)


def _command_hooks(plugins):
    for impl in plugins.pm.hook.chronology_commands.get_hookimpls():
        yield plugins.pm.get_name(impl.plugin), impl.function


if __name__ == "__main__":
    main()

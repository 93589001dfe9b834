"""A seeded, deterministic synthetic chronology: N incidents, S sources, realistic conflicts.

Each incident gets a date (some only to the week or month), a place, a kind, a perpetrator
(sometimes contested, sometimes hedged) and casualty and munition counts that sources report
differently: exact, "about", "at least", "at most" and ranges. Claims are written as JSON Lines
fact files (the bulk form), one file per batch of sources. `retractions(...)` picks, from the
claims as logged, the ones an analyst later retracts (about one in 200), deterministically.

    python bench/synthetic.py --incidents 10000 --out /tmp/synthetic
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path

import orjson

KINDS = ["rocket attack", "airstrike", "drone strike", "IED attack", "ballistic missile attack"]
ACTORS = ["Kataib Hezbollah", "Asaib Ahl al-Haq", "Kataib Sayyid al-Shuhada", "Islamic State", "unknown"]
PLACES = [
    ("Camp Taji", "Iraq", 33.52, 44.26),
    ("Baghdad", "Iraq", 33.31, 44.37),
    ("Erbil", "Iraq", 36.19, 44.01),
    ("Kirkuk", "Iraq", 35.47, 44.39),
    ("Albukamal", "Syria", 34.45, 40.92),
    ("Ain al-Asad", "Iraq", 33.79, 42.44),
]
PUBLISHERS = ["Wire A", "Wire B", "Daily C", "Ministry D", "Monitor E", "Blog F"]


def _incident_claims(rng: random.Random, number: int, sources: list[str]) -> Iterator[dict]:
    slug = f"synthetic-{number:07d}"
    day = dt.date(2015, 1, 1) + dt.timedelta(days=rng.randrange(3650))
    reporters = rng.sample(sources, k=min(len(sources), rng.choice([1, 2, 2, 3, 3, 4, 5])))
    killed = rng.choice([0, 0, 1, 2, 3, 5, 8, 13, 21])
    launched = rng.randint(1, 40)
    place = rng.choice(PLACES)
    actor = rng.choice(ACTORS)
    for position, source in enumerate(reporters):

        def claim(field, value, evidence, source=source, **extra):
            return {
                "source": source,
                "incident": slug,
                "field": field,
                "value": value,
                "evidence": evidence,
                **extra,
            }

        if position == 0:
            yield claim("title", f"{rng.choice(KINDS).capitalize()} near {place[0]} #{number}", "headline")
            yield claim("kind", rng.choice(KINDS), "the attack")
        precision = rng.random()
        if precision < 0.7:
            yield claim("date", day.isoformat(), "on that day")
        elif precision < 0.9:
            start = day - dt.timedelta(days=rng.randrange(4))
            yield claim(
                "date",
                {
                    "earliest": start.isoformat(),
                    "latest": (start + dt.timedelta(days=6)).isoformat(),
                    "precision": "week",
                },
                "earlier this week",
            )
        else:
            yield claim("date", day.strftime("%Y-%m"), "last month")
        yield claim(
            "location",
            {"name": place[0], "country": place[1], "lat": place[2], "lon": place[3]},
            f"near {place[0]}",
        )
        qualifier = rng.choice(["exact", "exact", "exact", "about", "at_least", "at_most"])
        reported = max(0, killed + rng.choice([0, 0, 0, 1, -1, 2]))
        yield claim("killed", reported, f"{reported} killed", qualifier=qualifier)
        if rng.random() < 0.6:
            low = max(0, launched - rng.randint(0, 5))
            if rng.random() < 0.2:
                yield claim("munitions_launched", [low, low + rng.randint(1, 10)], "between", qualifier="range")
            else:
                yield claim("munitions_launched", low, f"{low} rockets", qualifier=rng.choice(["exact", "about"]))
        if rng.random() < 0.5:
            named = actor if rng.random() < 0.8 else rng.choice(ACTORS)
            extra = {"hedge": "likely"} if rng.random() < 0.4 else {}
            yield claim("perpetrator", named, f"blamed {named}", **extra)


def write_corpus(
    out: Path, incidents: int, sources: int = 200, seed: int = 7, claims_per_file: int = 20_000
) -> tuple[list[Path], int]:
    """Write the corpus as JSON Lines files under `out`; return (files, number of claims)."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    source_keys = [f"synthetic-source-{n:05d}" for n in range(sources)]
    files: list[Path] = []
    total = 0
    buffer: list[bytes] = []
    registered: set[str] = set()

    def flush() -> None:
        if buffer:
            path = out / f"batch-{len(files):05d}.jsonl"
            path.write_bytes(b"".join(buffer))
            files.append(path)
            buffer.clear()

    for number in range(incidents):
        for claim in _incident_claims(rng, number, source_keys):
            if claim["source"] not in registered:
                registered.add(claim["source"])
                index = int(claim["source"].rsplit("-", 1)[1])
                buffer.append(
                    orjson.dumps(
                        {
                            "source": {
                                "id": claim["source"],
                                "publisher": PUBLISHERS[index % len(PUBLISHERS)] + f" {index}",
                                "title": f"Report series {index}",
                                "published": (dt.date(2015, 1, 1) + dt.timedelta(days=index)).isoformat(),
                                "reliability": "ABCDEF"[index % 6],
                            }
                        }
                    )
                    + b"\n"
                )
            buffer.append(orjson.dumps(claim) + b"\n")
            total += 1
            if len(buffer) >= claims_per_file:
                flush()
                registered.clear()  # each file registers the sources it uses (re-registering is a no-op)
    flush()
    return files, total


def retractions(claim_ids: list, seed: int = 7, share: float = 0.005) -> list[tuple]:
    """(claim id, reason) for the claims to retract, in log order: a seeded sample of `claim_ids`
    (as logged), each retraction with one of a few realistic reasons."""
    rng = random.Random(seed)
    count = max(1, round(len(claim_ids) * share)) if claim_ids else 0
    chosen = sorted(rng.sample(range(len(claim_ids)), count))
    reasons = ["mis-coded field", "duplicate of a wire report", "source withdrew the figure", "wrong incident"]
    return [(claim_ids[index], rng.choice(reasons)) for index in chosen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    files, claims = write_corpus(args.out, args.incidents, args.sources, args.seed)
    print(f"{claims} claims about {args.incidents} incidents in {len(files)} files under {args.out}")


if __name__ == "__main__":
    main()

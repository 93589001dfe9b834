"""An atheris (libFuzzer) target for the fact-file readers, run bounded by tests/test_hostile_input.py.

Any exception other than our own FactFileError is a crash. Usage:
    python tests/fuzz_fact_files.py -max_total_time=20 -rss_limit_mb=2048
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from chronology.errors import FactFileError
    from chronology.factfile import read_fact_file

FOLDER = tempfile.mkdtemp(prefix="chron-fuzz-")
SEED_TOML = (
    b'[source]\nid = "a"\npublisher = "P"\ntitle = "t"\npublished = 2020-03-12\n\n'
    b'[[claim]]\nincident = "a-b"\nfield = "killed"\nvalue = 3\nqualifier = "about"\nevidence = "q"\n'
)


def test_one_input(data: bytes) -> None:
    suffix = ".jsonl" if data[:1] == b"{" else ".toml"
    path = os.path.join(FOLDER, "input" + suffix)
    with open(path, "wb") as handle:
        handle.write(data)
    try:
        read_fact_file(path)
    except FactFileError:
        pass


def main() -> None:
    corpus = os.path.join(FOLDER, "corpus")
    os.makedirs(corpus, exist_ok=True)
    with open(os.path.join(corpus, "seed.toml"), "wb") as handle:
        handle.write(SEED_TOML)
    atheris.Setup([*sys.argv, corpus], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

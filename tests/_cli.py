"""Helpers for CLI tests."""
from __future__ import annotations

from digitrec.cli import main


def fails(capsys, argv: list[str], *fragments: str) -> None:
    """`digitrec ARGV` exits 2 with one line on stderr, `digitrec: error: ...`, holding every fragment."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("digitrec: error:") and len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err

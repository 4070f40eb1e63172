"""Regenerate the README's results section from benchmarks/results/ (the last file of each kind by name).

    python -m benchmarks.readme
For each kind of result it takes the title and the first table of the Markdown file the benchmark wrote, and links
the full file; nothing is typed in by hand.
"""
from __future__ import annotations

import re
from pathlib import Path

from digitrec.fileio import write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
START, END = "<!-- results:start -->", "<!-- results:end -->"

# (glob, heading) in the order they appear in the README
# For these kinds, the first table under each named '## ' section and the '## Conclusion' paragraph are taken instead.
SECTIONS = {"transfer-*.md": ("Few labels", "Cross-writer", "Ablation")}
# For these kinds the file's '## Notes' list follows the table (it says which timings a shared machine inflated).
WITH_NOTES = {"table1*.md"}
KINDS = [
    ("cpu*-20*.md", "Speed and accuracy (`python -m benchmarks.run`)"),
    ("h100*-20*.md", "Speed and accuracy on GPU (`python -m benchmarks.run`)"),
    ("paper-preset-mnist-*/README.md", "The paper's recipe, full run (`digitrec train --preset paper`)"),
    ("table1*.md", "Table 1 (`digitrec compare`)"),
    ("transfer-*.md", "Transfer learning (`benchmarks/transfer.py`)"),
    ("edge-*.md", "Edge deployment (`benchmarks/edge.py`)"),
    ("realworld-*.md", "Real-world reading (`benchmarks/realworld.py`)"),
    ("loadtest-*.md", "HTTP service under load (`benchmarks/loadtest.py`)"),
]


def first_tables(text: str, n: int = 1) -> list[str]:
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append("\n".join(current))
            current = []
    if current:
        tables.append("\n".join(current))
    return tables[:n]


def under(text: str, heading: str) -> str:
    """The part of a Markdown file under the '## ' heading that starts with `heading` (up to the next '## ')."""
    m = re.search(r"^## " + re.escape(heading) + r".*?$(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    return m.group(1) if m else ""


def section() -> str:
    parts = []
    for pattern, heading in KINDS:
        # by name, not mtime (a fresh clone gives every file the same mtime): names end in their date, so the newest
        # sorts last; a same-day re-measurement is named to sort after the record it replaces
        # (paper-preset-mnist-quiet-… after paper-preset-mnist-cpu2-…)
        files = sorted(RESULTS.glob(pattern))
        if not files:
            continue
        newest = files[-1]
        text = newest.read_text()
        if pattern in SECTIONS:
            tables = []
            for part in SECTIONS[pattern]:
                title = re.search(r"^## (" + re.escape(part) + r".*)$", text, flags=re.M)
                if title:
                    tables += [f"**{title.group(1)}**"] + first_tables(under(text, part))
            if under(text, "Conclusion").strip():
                tables.append(under(text, "Conclusion").strip())
        else:
            tables = first_tables(text, 2 if pattern.startswith(("cpu", "h100")) else 1)
            if pattern in WITH_NOTES and under(text, "Notes").strip():
                tables.append(under(text, "Notes").strip())
        rel = newest.relative_to(ROOT)
        parts.append(f"### {heading}\n\n" + "\n\n".join(tables) + f"\n\nFull results, command and hardware: [{rel}]({rel})\n")
    return "\n".join(parts)


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit("README.md has no results markers")
    new = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda m: f"{START}\n{section()}\n{END}", text, flags=re.S)
    write_text(readme, new)
    print("README results section regenerated")


if __name__ == "__main__":
    main()

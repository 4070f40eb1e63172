"""Regenerate the README's results section from the JSON records in benchmarks/results/.

    python -m benchmarks.readme            # rewrite README.md between its results markers
    python -m benchmarks.readme --check    # exit 1 if README.md differs from what the records give

For each kind of result it takes the newest record (by the date in its provenance) whose code state is known — a
commit with a clean tree, or uncommitted changes with the diff's hash — and renders its tables from the JSON with
the benchmark's own table functions, followed by how it was measured (commit, date, hardware, command) and a link to
the record. Records in results/archive/ (code state unknown) are never used; kinds without a usable record are left
out and listed on stderr. Nothing is typed in by hand.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

from benchmarks.provenance import describe, of_record, problem

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def records(results: Path = RESULTS) -> list[tuple[Path, dict[str, Any]]]:
    """Every record in results/ (not in archive/): NAME.json files and NAME/result.json folders."""
    found = []
    for path in sorted([*results.glob("*.json"), *results.glob("*/result.json")]):
        if path.parent.name == "archive":
            continue
        try:
            found.append((path, json.loads(path.read_text())))
        except (OSError, ValueError):
            print(f"skipped {path}: not valid JSON", file=sys.stderr)
    return found


def kind(record: dict[str, Any]) -> str | None:
    """The record's kind; records written before kinds existed are known by their contents."""
    if record.get("kind"):
        return record["kind"]
    if "time_to_accuracy" in record or "fast" in record:
        return "speed"
    if record.get("benchmark") == "loadtest":
        return "loadtest"
    return None


def _gpu(record: dict[str, Any]) -> bool:
    return bool(((of_record(record) or {}).get("hardware") or {}).get("gpu"))


# --- per kind: the tables, from the benchmark's own table functions --------------------------------------------

def speed(r: dict) -> list[str]:
    from benchmarks.run import fast_table, time_to_accuracy_table

    out = [*time_to_accuracy_table(r), ""] if "time_to_accuracy" in r else []
    if "speedrun" in r:
        out += ["`digitrec train --preset speedrun` (each a fresh process):", "", *fast_table(r["speedrun"]), ""]
    out += [*fast_table(r["fast"]), ""] if "fast" in r else []
    if "startup" in r:
        from benchmarks.startup import markdown as startup_markdown

        out += [*startup_markdown(r["startup"]), ""]
    return out


def int8(r: dict) -> list[str]:
    from benchmarks.int8 import results_table, verdict

    out = [*verdict(r), ""]
    for n in r.get("networks", []):
        out += [f"**{n['network']}**", "", *results_table(n), ""]
    if r.get("bf16"):
        from benchmarks.ideas import markdown

        out += [*markdown("bf16", {"presets": r["bf16"]})[2:], ""]
    return out


def gpu_speed(r: dict) -> list[str]:
    from benchmarks.gpu import summary_table

    return [*summary_table(r["summary"]), ""]


def training_run(r: dict) -> list[str]:
    from benchmarks.record_run import metrics_table

    return [*metrics_table(r["metrics"]), ""]


def table1(r: dict) -> list[str]:
    from digitrec.compare import dataset_table

    t = r["table"]
    out = []
    for dataset in dict.fromkeys(row["dataset"] for row in t["rows"]):
        out += [*dataset_table(t["rows"], dataset), ""]
    return out + [f"- {n}" for n in t.get("notes", []) if "nothing of ours beside it" not in n] + [""]


def transfer(r: dict) -> list[str]:
    from benchmarks.transfer import EMNIST_TITLE, SECTION_TITLES, _fewlabel_summary, emnist_table, runs_table

    titles = dict(SECTION_TITLES)
    out = []
    if "fewlabel" in r:
        out += [f"**{titles['fewlabel']}**", "", *_fewlabel_summary(r["fewlabel"]), ""]
    if "emnist" in r:
        out += [f"**{EMNIST_TITLE}**", "", *emnist_table(r["emnist"]), ""]
    if "ablation" in r:
        out += [f"**{titles['ablation']}**", "", *runs_table(r["ablation"], "ablation"), ""]
    return out


def edge(r: dict) -> list[str]:
    from benchmarks.edge import model_table

    return [line for m in r["models"] for line in (f"**{m['model']}**", "", *model_table(m), "")]


def realworld(r: dict) -> list[str]:
    from benchmarks.realworld import results_table

    return [*results_table(r), ""]


def loadtest(r: dict) -> list[str]:
    from benchmarks.loadtest import results_table

    return [*results_table(r), ""]


def accuracy(r: dict) -> list[str]:
    from benchmarks.accuracy import results_table

    return [*results_table(r), ""]


Selector = Callable[[dict[str, Any]], bool]
# (heading, which records, render) in README order
SECTIONS: list[tuple[str, Selector, Callable[[dict], list[str]]]] = [
    ("Speed and accuracy on a CPU (`python -m benchmarks.run`)", lambda r: kind(r) == "speed" and not _gpu(r), speed),
    ("Speed and accuracy on a GPU (`python -m benchmarks.run`)", lambda r: kind(r) == "speed" and _gpu(r), speed),
    ("Training on a GPU (`benchmarks/gpu.sh speed`)", lambda r: kind(r) == "gpu-speed" and r.get("complete")
     and not r.get("quick"), gpu_speed),
    ("int8 and bf16 on a CPU (`python -m benchmarks.int8`)", lambda r: kind(r) == "int8" and not r.get("quick"), int8),
    ("The paper's recipe, full run (`python -m benchmarks.record_run --train --preset paper`)",
     lambda r: kind(r) == "training-run" and str(r.get("name", "")).startswith("paper-preset"), training_run),
    ("Table 1 (`python -m benchmarks.table1`)", lambda r: kind(r) == "table1" and
     not (r.get("table", {}).get("settings", {}).get("limit") or r.get("table", {}).get("quick")), table1),
    ("MNIST accuracy over seeds, ensemble and ingredients (`python -m benchmarks.accuracy`)",
     lambda r: kind(r) == "accuracy" and not r.get("quick"), accuracy),
    ("Transfer learning (`python -m benchmarks.transfer`)", lambda r: kind(r) == "transfer", transfer),
    ("Edge deployment (`python -m benchmarks.edge`)", lambda r: kind(r) == "edge", edge),
    ("Real-world reading (`python -m benchmarks.realworld`)", lambda r: kind(r) == "realworld", realworld),
    ("HTTP service under load (`python -m benchmarks.loadtest`)", lambda r: kind(r) == "loadtest", loadtest),
]


def provenances(record: dict[str, Any]) -> list[dict[str, Any] | None]:
    """Every provenance a record's numbers rest on: its own, a training run's, each writer's, each row's."""
    provs = [of_record(record)] if "provenances" not in record else list(record["provenances"]) or [None]
    if record.get("trained") is not None or kind(record) == "training-run":
        provs.append(record.get("trained"))
    return provs


def unusable(record: dict[str, Any]) -> str | None:
    """Why a record cannot back a README number, or None."""
    for prov in provenances(record):
        if problem(prov):
            return problem(prov)
    if kind(record) == "table1":
        for row in record["table"]["rows"]:
            commit = row.get("commit") or "unknown"
            if row["status"] in ("trained", "reused") and ("unknown" in commit or "mixed" in commit
                                                           or ("-dirty" in commit and "diff sha256" not in commit)):
                return f"row {row['model']}: trained at {commit}"
    return None


def _date(record: dict[str, Any]) -> str:
    return min(str((p or {}).get("date") or "") for p in provenances(record))


def _link(path: Path) -> Path:
    """The Markdown beside the JSON (what a reader opens), else the JSON."""
    md = path.with_name("README.md") if path.name == "result.json" else path.with_suffix(".md")
    return (md if md.is_file() else path).relative_to(ROOT)


def section(results: Path = RESULTS, log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> str:
    found = records(results)
    parts = []
    for heading, selected, render in SECTIONS:
        usable = []
        for path, rec in found:
            if selected(rec):
                reason = unusable(rec)
                if reason:
                    log(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: not used ({reason})")
                else:
                    usable.append((_date(rec), path, rec))
        if not usable:
            log(f"no usable record for: {heading}")
            continue
        _, path, rec = max(usable, key=lambda u: (u[0], str(u[1])))
        measured = "\n".join(f"- {describe(p, notes=False)}" for p in provenances(rec) if p)
        link = _link(path) if path.is_relative_to(ROOT) else path
        parts.append(f"### {heading}\n\n" + "\n".join(render(rec)).rstrip() + "\n\n"
                     f"Measured:\n{measured}\n\nRecord: [{link}]({link})\n")
    return "\n".join(parts)


def render_readme(text: str, results: Path = RESULTS) -> str:
    if START not in text or END not in text:
        raise SystemExit("README.md has no results markers")
    return re.sub(re.escape(START) + ".*?" + re.escape(END), lambda m: f"{START}\n{section(results)}{END}", text,
                  flags=re.S)


def main() -> None:
    from digitrec.fileio import write_text

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only check that README.md is up to date")
    args = ap.parse_args()
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = render_readme(text)
    if args.check:
        raise SystemExit(0 if new == text else "README.md's results differ from the records: python -m benchmarks.readme")
    write_text(readme, new)
    print("README results section regenerated")


if __name__ == "__main__":
    main()

"""The Markdown page of a benchmarks/realworld.py record (its JSON holds every number and every text read)."""
from __future__ import annotations

from benchmarks.provenance import describe, of_record

CELLS = ("single", "canvas", "photo", "unknown", "numbers")
BUDGET = {"phone": 0.100, "canvas": 0.005, "hostile": 1.0, "memory_mb": 300.0}


def _cell(score: dict, part: str, key: str) -> str:
    c = score.get(part, {}).get(key)
    return "—" if c is None else f"{c['right']}/{c['n']} ({c['right'] / c['n']:.1%})"


def accuracy_table(result: dict) -> list[str]:
    base = result["digitrec"][0]["seconds_per_image"]
    lines = ["| reader | part | single digits | canvas | photo | unknown | numbers | MNIST test | s/image | × digitrec's time |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in result["digitrec"] + result["peers"]:
        if "unavailable" in row:
            lines.append(f"| {row['reader']} | — | not available: {row['unavailable']} |" + " |" * 7)
            continue
        mnist = f"{row['mnist_test_accuracy']:.2%}" if "mnist_test_accuracy" in row else "—"
        for part in ("all", "A", "B"):
            cells = " | ".join(_cell(row["score"], part, k) for k in CELLS)
            speed = (f"{row['seconds_per_image']:.3f} | {row['seconds_per_image'] / base:.1f}"
                     if part == "all" else " | ")
            lines.append(f"| {row['reader'] if part == 'all' else ''} | {part} | {cells} | "
                         f"{mnist if part == 'all' else ''} | {speed} |")
    return lines


def failure_list(result: dict) -> list[str]:
    lines = [f"Every image the bundled model gets wrong ({len(result['failures'])}), with the cause as judged by "
             "looking at the image and the crops the model saw:", "",
             "| file | kind | half | truth | read | cause |", "| --- | --- | --- | --- | --- | --- |"]
    for f in result["failures"]:
        lines.append(f"| {f['file']} | {f['kind']}{' (number)' if f['multi'] else ''} | {f['half']} | "
                     f"{f['truth']} | {f['read'] or '(none)'} | {f['cause']} |")
    return lines


def speed_table(speed: dict) -> list[str]:
    def row(name: str, t: dict, budget: float | None) -> str:
        ok = "" if budget is None else ("yes" if t["max_s"] <= budget else "**no**")
        return f"| {name} | {t['median_s'] * 1000:.1f} | {t['max_s'] * 1000:.1f} | " \
               f"{'' if budget is None else f'{budget * 1000:.0f}'} | {ok} |"

    lines = ["| image | median ms | worst ms | budget ms | within |", "| --- | --- | --- | --- | --- |"]
    lines += [row(f"real 12-MP phone JPEG {name}", t, BUDGET["phone"]) for name, t in speed["phone_real"].items()]
    lines.append(row("synthetic 12-MP phone JPEG", speed["phone_synthetic"], BUDGET["phone"]))
    lines.append(row("280×280 canvas PNG", speed["canvas"], BUDGET["canvas"]))
    lines += [row(name, t, BUDGET["hostile"]) for name, t in speed["hostile"].items()]
    lines += ["", "Cost against size (noise images; per-pixel work is capped at 1024 px on the long side):", "",
              "| image | median ms | worst ms |", "| --- | --- | --- |"]
    lines += [f"| {name} | {t['median_s'] * 1000:.1f} | {t['max_s'] * 1000:.1f} |" for name, t in speed["growth"].items()]
    mem, eps = speed["memory_16bit_6300"], speed["eps"]
    lines += ["", f"16-bit 6300×6300 PNG ({mem['file_bytes']:,} bytes): {mem['extra_mb']:.0f} MB extra peak memory "
                  f"(budget {BUDGET['memory_mb']:.0f} MB).",
              f"80-byte EPS: {'refused' if eps['refused'] else '**not refused**'} in {eps['seconds'] * 1000:.1f} ms "
              f"(\"{eps['message']}\")."]
    return lines


def markdown(result: dict) -> str:
    lines = [f"# Reading real handwriting: {result['data']['images']} images of {result['data']['folder']}", "",
             describe(of_record(result) or {}) + " · one thread", "",
             "Exact matches: a single digit's one-digit text, a number's whole digit string. Halves A and B split "
             "the writers (source repositories) in two; `× digitrec's time` is seconds per image over the bundled "
             "model's, all read here from the file, decode included.", ""]
    lines += accuracy_table(result) + [""] + failure_list(result)
    if "speed" in result:
        lines += ["", "## Speed on one core and bounds on hostile input", ""] + speed_table(result["speed"])
    if "synthetic" in result:
        lines += ["", "## Synthetic photos of numbers (make_realworld.py)", "",
                  "| reader | images | digits | digit acc. | numbers |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {r['reader']} | {r['images']} | {r['digits']} | {r['digit_accuracy']:.1%} | "
                  f"{r['number_accuracy']:.1%} |" for r in result["synthetic"]]
    return "\n".join(lines) + "\n"

"""The load test's Markdown record (from the JSON record; nothing typed in by hand)."""
from __future__ import annotations

from benchmarks.provenance import describe, of_record

PAYLOADS = ("28x28", "canvas", "photo")


def _run(record: dict, payload: str, server: str, workers: int) -> dict | None:
    return record["runs"].get(payload, {}).get(f"{server}/w{workers}")


def _errors(run: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in run["errors"].items()) or "0"


def headline(record: dict) -> list[str]:
    rows = ["| payload | workers | digitrec req/s | baseline req/s | ratio | digitrec p99 ms | baseline p99 ms "
            "| digitrec errors | baseline errors |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for workers in record["settings"]["workers"]:
        for p in PAYLOADS:
            d, b = _run(record, p, "digitrec", workers), _run(record, p, "baseline", workers)
            if d and b and b["requests_per_s"]:
                rows.append(f"| {p} | {workers} | {d['requests_per_s']:,} | {b['requests_per_s']:,} | "
                            f"{d['requests_per_s'] / b['requests_per_s']:.2f}× | {d['latency_ms']['p99']} | "
                            f"{b['latency_ms']['p99']} | {_errors(d)} | {_errors(b)} |")
    return rows


def targets(record: dict) -> list[str]:
    lines = ["## Targets", ""]
    d = _run(record, "28x28", "digitrec", 1)
    if d:
        ok = d["requests_per_s"] >= 1000 and d["latency_ms"]["p99"] <= 100
        lines.append(f"- 28×28 upload, 1 worker: ≥ 1,000 req/s with p99 ≤ 100 ms — **{'met' if ok else 'NOT met'}** "
                     f"({d['requests_per_s']:,} req/s, p99 {d['latency_ms']['p99']} ms)")
    for workers in record["settings"]["workers"]:
        for p in PAYLOADS:
            d, b = _run(record, p, "digitrec", workers), _run(record, p, "baseline", workers)
            if d and b:
                ok = d["requests_per_s"] >= b["requests_per_s"] and d["latency_ms"]["p99"] <= b["latency_ms"]["p99"]
                lines.append(f"- {p}, {workers} worker(s): digitrec ≥ 1.0× the baseline with p99 no worse — "
                             f"**{'met' if ok else 'NOT met'}**")
    z = record["runs"].get("zero_error_run")
    if z:
        ok = z["errors"] == 0 and z["wrong_answers"] == 0 and z["requests_checked"] == record["settings"]["exact_requests"]
        lines.append(f"- {z['connections']} clients × {z['requests_checked']:,} requests (28×28, every answer checked): "
                     f"**{'0 errors' if ok else 'ERRORS'}** ({z['errors']} failed, {z['wrong_answers']} wrong; "
                     f"{z['requests_per_s']:,} req/s, p99 {z['latency_ms']['p99']} ms)")
    return lines + [""]


def scaling(record: dict) -> list[str]:
    if sorted(record["settings"]["workers"])[:2] != [1, 2]:
        return []
    rows = ["## Scaling: 1 vs 2 worker processes", "",
            "| payload | digitrec w1 | digitrec w2 | × | baseline w1 | baseline w2 | × |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for p in PAYLOADS:
        r = [_run(record, p, s, w) for s in ("digitrec", "baseline") for w in (1, 2)]
        if all(r) and all(x["requests_per_s"] for x in r):
            v = [x["requests_per_s"] for x in r]
            rows.append(f"| {p} | {v[0]:,} | {v[1]:,} | {v[1] / v[0]:.2f} | {v[2]:,} | {v[3]:,} | {v[3] / v[2]:.2f} |")
    return rows + ["", "Both workers share the 2 cores with wrk; the second worker can only use what wrk and the "
                       "first leave.", ""]


ATTRIBUTION = ("digitrec", "swapped", "baseline", "pool")


def breakdown(record: dict) -> list[str]:
    lines = ["## Where the time goes", "",
             "Server CPU per request under load (all threads and worker processes, from /proc); for attribution "
             "only, not shipped: the same server code with the baseline's plain preprocessing swapped in "
             "(`swapped`), and digitrec with every upload decoded in the decode pool (`pool`: "
             "`--inline-pixels 0`):", "",
             "| payload | " + " | ".join(f"{s} req/s" for s in ATTRIBUTION) + " | "
             + " | ".join(f"{s} CPU ms/req" for s in ATTRIBUTION) + " |",
             "| --- | " + " | ".join("---:" for _ in ATTRIBUTION * 2) + " |"]
    for p in PAYLOADS:
        r = [_run(record, p, s, 1) for s in ATTRIBUTION]
        if all(r[:3]):  # (records from before the pool column lack it)
            lines.append("| " + p + " | " + " | ".join(f"{x['requests_per_s']:,}" if x else "–" for x in r) + " | "
                         + " | ".join(f"{x['server_cpu_ms_per_request']}" if x else "–" for x in r) + " |")
    stages = record["stages"]
    names = list(dict.fromkeys(k for p in stages.values() for who in ("digitrec", "baseline") for k in p[who]))
    lines += ["", "Each stage alone, one thread, µs per request (median of 5 rounds; photo: all its digits):", "",
              "| stage | " + " | ".join(f"{p} digitrec | {p} baseline" for p in stages) + " |",
              "| --- | " + " | ".join("---: | ---:" for _ in stages) + " |"]
    for name in names:
        cells = [f"{stages[p][who].get(name, '–')}" for p in stages for who in ("digitrec", "baseline")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    slow = record.get("slow_inline_ms")
    if slow:
        lines += ["", "The slowest uploads we found that are still decoded on the event loop (≤ 16 KB and "
                  "`--inline-pixels`): how long one holds the loop, ms on one thread:", "",
                  "| upload | bytes | on the loop | as one digit | as a number |", "| --- | ---: | --- | ---: | ---: |"]
        for name, r in slow.items():
            lines.append(f"| {name} | {r['bytes']:,} | {'yes' if r['on the loop'] else 'no'} | {r['one_digit']} | "
                         f"{r['digits_of_number']} |")
    prof = record["runs"].get("profile")
    if prof:
        names = list(prof)
        lines += ["", "Under the 28×28 load, 1 worker, py-spy (200 Hz, all threads, idle excluded): share of busy samples",
                  "", "| where | " + " | ".join(names) + " |", "| --- | " + " | ".join("---:" for _ in names) + " |"]
        for bucket in prof[names[0]]["share"]:
            lines.append(f"| {bucket} | " + " | ".join(f"{100 * prof[n]['share'][bucket]:.1f} %" for n in names) + " |")
        lines.append("| busy samples | " + " | ".join(f"{prof[n]['samples']:,}" for n in names) + " |")
    return lines + [""]


def answers(record: dict) -> list[str]:
    got = record["runs"].get("answers", {})
    payloads = record["settings"]["payloads"]
    lines = ["## Answers", "", "| payload | what | expected | " + " | ".join(got) + " |",
             "| --- | --- | --- | " + " | ".join("---" for _ in got) + " |"]
    for p, info in payloads.items():
        lines.append(f"| {p} | {info['what']} | {info['expected']} | "
                     + " | ".join(str(got[s].get(p)) for s in got) + " |")
    return lines + [""]


def markdown(record: dict) -> str:
    s = record["settings"]
    return "\n".join([
        "# Load test: `digitrec serve` beside a minimal baseline server (wrk)", "",
        f"`wrk -t1 -c{s['connections']} -d{s['duration_s']:g}s` per server and payload after a {s['warmup_s']:g} s "
        f"warm-up, {s.get('rounds', 1)} round(s) with the servers interleaved, the median round shown; the same ONNX "
        "model, onnxruntime on one thread, in every server. Baseline: "
        "`benchmarks/loadtest_baseline.py` (Starlette + onnxruntime, plain MNIST-style preprocessing).", "",
        *headline(record), "", *targets(record), *scaling(record), *breakdown(record), *answers(record),
        "## Where and how", "",
        f"Load average at start "
        f"{', '.join(f'{v:.2f}' for v in record['load_average_at_start'])}, at end "
        f"{', '.join(f'{v:.2f}' for v in record['load_average_at_end'])}. wrk and the servers share the cores"
        + (f"; {s['note']}" if s["note"] else "") + ".", "",
        describe(of_record(record) or {}) + "." + (" Quick smoke run." if s["quick"] else ""),
        ""])

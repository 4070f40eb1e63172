"""Transfer learning, measured: does pretraining a backbone help digits, and where?

    DIGITREC_DATA=/work/shared/data nice -n 10 python3 benchmarks/transfer.py [--work DIR] [--only SECTION,...]
        [--models M,...] [--fractions F,...] [--with-224]

Sections (run in this order; the JSON and Markdown are rewritten after each run, so partial results survive):
  speed     training and inference images/s of each model and ResNet input size (1 thread)
  pretrain  Fashion-MNIST pretraining (the stand-in for ImageNet, whose weights cannot be downloaded here) of
            paper-cnn (3 epochs), resnet18@64 and hybrid@64 (2 epochs) on 12,000 images
            — `apt-get install dataset-fashion-mnist`
  fewlabel  paper-cnn on 1 % (10 epochs), 10 % (5 epochs) — seeds 0, 1, 2 — and 100 % (2 epochs, seed 0) of
            MNIST's training labels: from scratch vs initialised from Fashion-MNIST (fine-tuned, and with the conv
            stack frozen); MNIST's full 10,000-image test set
  emnist    a paper-cnn trained on MNIST (the 10 % scratch run, seed 0) on the 600 real EMNIST Digits test images,
            before and after fine-tuning on 480 of them, 5-fold cross-validated (vs from scratch on the same 480)
  ablation  paper-cnn vs resnet18 (input 28, 64, 112; 224 with --with-224) vs hybrid@64, from scratch vs
            Fashion-pretrained, frozen vs fine-tuned, 3 epochs on 6,000 MNIST training images; tested on a fixed
            stratified 2,000-image subset of MNIST's canonical test set (see Speed for what each costs per image)

Every run is a real `digitrec.train.train` call (1 thread, CPU, canonical split of an IDX folder the script writes:
its train file split 90/10 into train/validation, its test file the test set). Run folders are kept under --work;
a run folder that already holds metrics.json is reused (marked "reused") so an interrupted benchmark can continue,
and sections can run in two processes side by side (--models / --only), waiting for each other's pretraining.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.provenance import describe, load_average, machine_slug, provenance  # noqa: E402
from digitrec.config import make_config  # noqa: E402
from digitrec.data import load  # noqa: E402
from digitrec.data.idx import write_idx  # noqa: E402
from digitrec.data.splits import stratified_subset  # noqa: E402
from digitrec.evaluate import evaluate_checkpoint  # noqa: E402
from digitrec.fileio import write_json, write_text  # noqa: E402
from digitrec.models import create  # noqa: E402
from digitrec.train import train  # noqa: E402

FASHION = "/usr/share/datasets/fashion-mnist"
RESULTS = Path(__file__).parent / "results"
SECTIONS = ("speed", "pretrain", "fewlabel", "emnist", "ablation")
COMMON = dict(split="canonical", device="cpu", threads=1, lr=1e-3, batch_size=64, seed=0, optimizer="adam")


def idx_folder(folder: Path, train_x, train_y, test_x, test_y) -> str:
    """An MNIST-format folder (the `idx:DIR` dataset) holding these arrays."""
    if not (folder / "t10k-labels-idx1-ubyte").exists():
        for name, arr in (("train-images-idx3-ubyte", train_x), ("train-labels-idx1-ubyte", train_y),
                          ("t10k-images-idx3-ubyte", test_x), ("t10k-labels-idx1-ubyte", test_y)):
            write_idx(folder / name, np.ascontiguousarray(arr, dtype=np.uint8))
    return f"idx:{folder}"


def subset(arrays, n_train: int | None, n_test: int | None, seed: int = 1):
    tr = stratified_subset(arrays.train_labels, n_train, seed) if n_train else np.arange(len(arrays.train_labels))
    te = stratified_subset(arrays.test_labels, n_test, seed) if n_test else np.arange(len(arrays.test_labels))
    return arrays.train_images[tr], arrays.train_labels[tr], arrays.test_images[te], arrays.test_labels[te]


def run(out: Path, name: str, **overrides) -> dict:
    """One training run → its row (accuracy on the folder's test set, training time)."""
    cfg = make_config(None, **{**COMMON, **overrides})
    reused = (out / "metrics.json").exists()
    if not reused and _NO_TRAIN:  # --no-train: report finished runs only
        print(f"  {name:44s} not run", flush=True)
        return None
    t0, c0 = time.perf_counter(), time.process_time()
    if reused:
        m = json.loads((out / "metrics.json").read_text())
        cpu = json.loads((out / "cpu.json").read_text())["cpu_s"]
    else:
        if out.exists():  # an interrupted run: start it again
            shutil.rmtree(out)
        m = train(cfg, out, progress=False, log=lambda s: print(f"    {s}", flush=True))
        cpu = time.process_time() - c0
        write_json(out / "cpu.json", {"cpu_s": cpu})
    row = {"name": name, "model": cfg.model, "model_options": cfg.model_options, "init_from": cfg.init_from,
           "backbone_weights": cfg.backbone_weights, "freeze": cfg.freeze, "epochs": m.get("epochs", cfg.epochs),
           "sizes": m["sizes"], "accuracy": m["accuracy"], "train_time_s": round(m["train_time_s"], 1),
           "cpu_s": round(cpu, 1), "wall_s": round(time.perf_counter() - t0, 1), "run": str(out), "reused": reused}
    print(f"  {name:44s} acc {row['accuracy']:.4f}  train {row['train_time_s']:7.1f}s wall, run {cpu:7.1f}s CPU  "
          f"{m['sizes']}", flush=True)
    return row


# --- sections ------------------------------------------------------------------------------------------------------


def speed(work: Path, res: dict) -> None:
    torch.set_num_threads(1)
    rows = []
    for model, opts in [("paper-cnn", {}), ("resnet18", {"input_size": 28}), ("resnet18", {"input_size": 64}),
                        ("resnet18", {"input_size": 112}), ("resnet18", {"input_size": 224}),
                        ("hybrid", {"input_size": 28}), ("hybrid", {"input_size": 64})]:
        torch.manual_seed(0)
        m = create(model, **opts)
        opt = torch.optim.Adam(m.parameters(), 1e-3)
        x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))

        def step():
            loss = F.cross_entropy(m(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        def timed(fn, n_per, budget=1.0):  # CPU time of this process: fair on a CPU shared with other work
            fn()  # warm-up
            n, t0 = 0, time.process_time()
            while n < 2 * n_per or time.process_time() - t0 < budget:
                fn()
                n += n_per
            return n / (time.process_time() - t0)

        m.train()
        train_ips = timed(step, 16)
        m.eval()
        xi = torch.rand(64, 1, 28, 28)
        with torch.no_grad():
            infer_ips = timed(lambda: m(xi), 64)
        params = sum(p.numel() for p in m.parameters())
        rows.append({"model": model, "model_options": opts, "params": params,
                     "train_images_per_s": round(train_ips, 1), "inference_images_per_s": round(infer_ips, 1)})
        print(f"  {model} {opts}: train {train_ips:.1f} img/s, inference {infer_ips:.1f} img/s", flush=True)
    res["speed"] = rows


PRE_EPOCHS = {"paper-cnn": 3, "resnet18": 2, "hybrid": 2}
FEW = ((0.01, 10, (0, 1, 2)), (0.10, 5, (0, 1, 2)), (1.0, 2, (0,)))  # label fraction, epochs, seeds
ABL_EPOCHS = 3


def _wait_for(path: Path, what: str) -> None:
    while not path.exists() and not _NO_TRAIN:  # another process may be training it
        print(f"  waiting for {what}", flush=True)
        time.sleep(30)


def pretrain(work: Path, res: dict, models: list[str]) -> None:
    """Fashion-MNIST pretraining (12,000 training images) of each backbone the later sections start from."""
    fashion = load(f"idx:{FASHION}")
    ds = idx_folder(work / "data" / "fashion-12000", *subset(fashion, 12_000, 2_000))
    rows = []
    for model in ("paper-cnn", "resnet18", "hybrid"):
        if model not in models:
            continue
        opts = {} if model == "paper-cnn" else {"input_size": 64}
        size = "@64" if opts else ""
        row = run(work / f"pre-{model}", f"fashion: {model}{size}", model=model, dataset=ds,
                  epochs=PRE_EPOCHS[model], model_options=opts)
        if row:
            rows.append(row)
            res["pretrain"] = rows
            write(res, ("pretrain",))


def fewlabel(work: Path, res: dict, fractions: list[float]) -> None:
    mnist = load("mnist")
    pre = work / "pre-paper-cnn" / "model.pt"
    rows = []
    variants = (("scratch", {}), ("fashion-pretrained, fine-tuned", {"init_from": str(pre)}),
                ("fashion-pretrained, conv stack frozen", {"init_from": str(pre), "freeze": "backbone"}))
    plans = [(f, e, seed, v) for f, e, seeds in FEW if f in fractions for seed in seeds for v in variants
             if not (f == 1.0 and "frozen" in v[0])]
    plans.sort(key=lambda p: (p[3][0] != "scratch", p[0], p[2]))  # scratch first: pretraining may still be running
    for frac, epochs, seed, (variant, extra) in plans:
        n = int(round(60_000 * frac))
        ds = idx_folder(work / "data" / f"mnist-{n}", *subset(mnist, n if frac < 1 else None, None))
        if extra:
            _wait_for(pre, "the pretrain section's paper-cnn")
        slug = variant.split(",")[0] + ("-frozen" if "frozen" in variant else "")
        row = run(work / f"few-{n}-{slug}-s{seed}", f"{frac:.0%} labels ({n}), seed {seed}: {variant}",
                  model="paper-cnn", dataset=ds, epochs=epochs, seed=seed, **extra)
        if row is None:
            continue
        row.update({"labels": n, "fraction": frac, "variant": variant, "seed": seed})
        rows.append(row)
        order = [v[0] for v in variants]
        res["fewlabel"] = sorted(rows, key=lambda r: (r["labels"], order.index(r["variant"]), r["seed"]))
        write(res, ("fewlabel",))


def emnist(work: Path, res: dict, data_root: Path, source: str, with_scratch: bool) -> None:
    from sklearn.model_selection import StratifiedKFold

    src = work / source / "model.pt"  # a paper-cnn trained on part of MNIST (a fewlabel run)
    while not (src.parent / "metrics.json").exists():  # the fewlabel section may be training it in another process
        print(f"  waiting for the fewlabel run {source}", flush=True)
        time.sleep(30)
    with np.load(data_root / "emnist" / "emnist-digits-test-sample600.npz") as d:
        images = np.ascontiguousarray(d["images"].transpose(0, 2, 1))  # IDX orientation → upright, as the loader does
        labels = d["labels"].astype(np.uint8)
    all_ds = idx_folder(work / "data" / "emnist600", images[:10], labels[:10], images, labels)
    before_all = evaluate_checkpoint(src, all_ds, "canonical")["accuracy"]
    folds = []
    for k, (tr, te) in enumerate(StratifiedKFold(5, shuffle=True, random_state=0).split(images, labels)):
        ds = idx_folder(work / "data" / f"emnist-fold{k}", images[tr], labels[tr], images[te], labels[te])
        before = evaluate_checkpoint(src, ds, "canonical")["accuracy"]
        tuned = run(work / f"emnist-{source}-fold{k}-finetune", f"fold {k}: MNIST model fine-tuned",
                    model="paper-cnn", dataset=ds, epochs=4, init_from=str(src))
        if tuned is None:
            continue
        fold = {"fold": k, "n_finetune": len(tr), "n_test": len(te), "before": before,
                "finetuned": tuned["accuracy"], "finetune_time_s": tuned["train_time_s"], "finetune_cpu_s": tuned["cpu_s"]}
        if with_scratch:
            scratch = run(work / f"emnist-fold{k}-scratch", f"fold {k}: from scratch", model="paper-cnn",
                          dataset=ds, epochs=4)
            if scratch is not None:
                fold.update(scratch=scratch["accuracy"], scratch_time_s=scratch["train_time_s"])
        folds.append(fold)
        print(f"  fold {k}: before {before:.4f}  fine-tuned {tuned['accuracy']:.4f}  "
              f"scratch {fold.get('scratch', float('nan')):.4f}", flush=True)

    def ms(key):
        vals = [f[key] for f in folds if key in f]
        if not vals:
            return None
        return {"mean": statistics.mean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0, "n": len(vals)}

    res["emnist"] = {"source_model": str(src), "source_sizes": json.loads((src.parent / "metrics.json").read_text())[
        "sizes"], "source_mnist_test_accuracy": json.loads((src.parent / "metrics.json").read_text())["accuracy"],
        "before_all_600": before_all, "folds": folds,
        "before": ms("before"), "finetuned": ms("finetuned"), "scratch": ms("scratch")}


def ablation(work: Path, res: dict, models: list[str], with_224: bool) -> None:
    mnist = load("mnist")
    ds = idx_folder(work / "data" / "mnist-abl6000", *subset(mnist, 6_000, 2_000))
    pre = {m: work / f"pre-{m}" / "model.pt" for m in ("paper-cnn", "resnet18", "hybrid")}
    plans = [
        ("paper-cnn", {}, "scratch", {}),
        ("paper-cnn", {}, "fashion-pretrained, fine-tuned", {"init_from": str(pre["paper-cnn"])}),
        ("paper-cnn", {}, "fashion-pretrained, conv stack frozen",
         {"init_from": str(pre["paper-cnn"]), "freeze": "backbone"}),
        ("resnet18", {"input_size": 28}, "scratch", {}),
        ("resnet18", {"input_size": 64}, "scratch", {}),
        ("resnet18", {"input_size": 64}, "fashion-pretrained, fine-tuned", {"backbone_weights": str(pre["resnet18"])}),
        ("resnet18", {"input_size": 64}, "fashion-pretrained, frozen",
         {"backbone_weights": str(pre["resnet18"]), "freeze": "backbone"}),
        ("resnet18", {"input_size": 112}, "scratch", {}),
        ("hybrid", {"input_size": 64}, "scratch", {}),
        # hybrid: --init-from, so both branches and the head start from Fashion-MNIST; "frozen" = its ResNet branch
        ("hybrid", {"input_size": 64}, "fashion-pretrained, fine-tuned", {"init_from": str(pre["hybrid"])}),
        ("hybrid", {"input_size": 64}, "fashion-pretrained, ResNet branch frozen",
         {"init_from": str(pre["hybrid"]), "freeze": "backbone"}),
    ] + ([("resnet18", {"input_size": 224}, "scratch", {})] if with_224 else [])
    rows = []
    for model, opts, variant, extra in (p for p in plans if p[0] in models):
        src = extra.get("init_from") or extra.get("backbone_weights")
        if src:
            _wait_for(Path(src), f"the pretrain section's {model}")
        size = f"@{opts['input_size']}" if opts else ""
        slug = f"abl-{model}{size.strip('@')}-{variant.split(',')[0]}{'-frozen' if 'frozen' in variant else ''}"
        row = run(work / slug, f"{model}{size}: {variant}", model=model, dataset=ds, epochs=ABL_EPOCHS,
                  model_options=opts, **extra)
        if row is None:
            continue
        row["variant"] = variant
        rows.append(row)
        res["ablation"] = rows
        write(res, ("ablation",))
    res["ablation_not_run"] = [] if with_224 else [
        "resnet18@224: the slowest input size to train (see Speed); run it with --with-224"]
    res["ablation_not_run"].append(
        "resnet18@28 pretrained/frozen and hybrid@28: a pretrained 7×7 conv1 does not fit the 3×3 stem of the 28×28 "
        "input; only resnet18@28 from scratch is run")


# --- output ------------------------------------------------------------------------------------------------------

_OUT: dict = {}
_NO_TRAIN = False


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _fewlabel_summary(rows: list[dict]) -> list[str]:
    """Mean ± std over seeds for each (label count, variant)."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["labels"], r["epochs"]), {}).setdefault(r["variant"], []).append(r["accuracy"])
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    out = ["| labels | epochs | " + " | ".join(variants) + " |", "| ---: | ---: |" + " ---: |" * len(variants)]
    for (n, epochs), by_variant in sorted(groups.items()):
        cells = []
        for v in variants:
            acc = by_variant.get(v)
            if not acc:
                cells.append("not run")
            elif len(acc) == 1:
                cells.append(f"{_pct(acc[0])} (1 seed)")
            else:
                cells.append(f"{_pct(statistics.mean(acc))} ± {100 * statistics.stdev(acc):.2f} ({len(acc)} seeds)")
        out.append(f"| {n:,} | {epochs} | " + " | ".join(cells) + " |")
    return out


ABLATION_ORDER = (("paper-cnn", "resnet18", "hybrid"), ("scratch", "fashion-pretrained, fine-tuned"))


def runs_table(rows: list[dict], key: str = "") -> list[str]:
    """Markdown rows: one per run (sizes, epochs, test accuracy, wall and CPU time)."""
    if key == "ablation":  # model, input size, then variant: the order of the plan, whichever process ran it
        models, variants = ABLATION_ORDER
        rows = sorted(rows, key=lambda r: (models.index(r["model"]), (r["model_options"] or {}).get("input_size", 0),
                                           variants.index(r["variant"]) if r["variant"] in variants else 2))
    out = ["| run | train / val / test | epochs | test accuracy | training (wall) | whole run (CPU) |",
           "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        s = r["sizes"]
        out.append(f"| {r['name']} | {s['train']} / {s['val']} / {s['test']} | {r['epochs']} | "
                   f"{_pct(r['accuracy'])} | {r['train_time_s']:.0f} s | {r['cpu_s']:.0f} s |")
    return out


def emnist_table(e: dict) -> list[str]:
    """Markdown rows: per fold, EMNIST accuracy before / after fine-tuning / from scratch."""
    out = ["| fold | before | fine-tuned | from scratch on the 480 |", "| ---: | ---: | ---: | ---: |"]
    for f in e["folds"]:
        scratch = _pct(f["scratch"]) if "scratch" in f else "not run"
        out.append(f"| {f['fold']} | {_pct(f['before'])} | {_pct(f['finetuned'])} | {scratch} |")
    if e["folds"]:
        out.append(f"| mean ± std ({len(e['folds'])} folds) | " + " | ".join(
            f"{_pct(e[k]['mean'])} ± {100 * e[k]['std']:.2f}" if e.get(k) else "not run"
            for k in ("before", "finetuned", "scratch")) + " |")
    return out


SECTION_TITLES = (("pretrain", "Fashion-MNIST pretraining (12,000 training images; test = 2,000 Fashion test)"),
                  ("fewlabel", "Few labels: paper-cnn on MNIST (test = MNIST's 10,000 test images)"),
                  ("ablation", f"Ablation on MNIST: 6,000 training images, {ABL_EPOCHS} epochs "
                               "(test = stratified 2,000 of MNIST's canonical test set)"))
EMNIST_TITLE = "Cross-writer: MNIST model → 600 real EMNIST Digits test images (5-fold: tune 480, test 120)"


def markdown(res: dict) -> str:
    provs = res.get("provenances", [])
    lines = [f"# Transfer learning — {provs[-1]['date'] if provs else '?'}", "",
             *[f"- {describe(p)}" for p in provs], "",
             "1 torch thread per process; where the load average exceeds the cores, other work shared the machine and "
             "wall times are pessimistic; the CPU column is the run's own time.",
             "", "Every run: Adam lr 1e-3, batch 64, the paper's augmentation (rotation/shear/shift), seed 0 unless "
             "stated, CPU, canonical split (train file 90/10 into train/validation; best-validation epoch is tested). "
             "Fashion-MNIST pretraining stands in for ImageNet, whose weights cannot be downloaded here.", ""]
    if "speed" in res:
        lines += ["## Speed (1 thread, images per CPU-second: batch 16 training / 64 inference, random input)", "",
                  "| model | parameters | train img/s | inference img/s |", "| --- | ---: | ---: | ---: |"]
        for r in res["speed"]:
            size = f"@{r['model_options']['input_size']}" if r["model_options"] else ""
            lines.append(f"| {r['model']}{size} | {r['params']:,} | {r['train_images_per_s']} | "
                         f"{r['inference_images_per_s']} |")
        lines.append("")
    for key, title in SECTION_TITLES:
        if key in res:
            lines += [f"## {title}", "", *(_fewlabel_summary(res[key]) + ["", "Every run:", ""] if key == "fewlabel"
                                           else []), *runs_table(res[key], key), ""]
            if key == "ablation" and res.get("ablation_not_run"):
                lines += ["Not run:", ""] + [f"- {t}" for t in res["ablation_not_run"]] + [""]
    if "emnist" in res:
        e, sz = res["emnist"], res["emnist"]["source_sizes"]
        lines += [f"## {EMNIST_TITLE}", "",
                  f"Source model: paper-cnn trained on {sz['train']} MNIST images ({e['source_model']}; "
                  f"{_pct(e['source_mnist_test_accuracy'])} on MNIST's test set). On all 600 EMNIST images before "
                  f"fine-tuning: {_pct(e['before_all_600'])}. Fine-tuning: 4 epochs on the fold's 480 images "
                  "(432 train + 48 validation), all weights, lr 1e-3.", "", *emnist_table(e), ""]
    if res.get("conclusion"):
        lines += ["## Conclusion", "", res["conclusion"], ""]
    return "\n".join(lines)


def write(res: dict, keys) -> None:
    """Merge this process's sections into the results file (two processes may run sections side by side)."""
    import fcntl  # POSIX only, like the rest of this benchmark's tooling

    with open(_OUT["lock"], "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        merged = json.loads(_OUT["json"].read_text()) if _OUT["json"].exists() else {}
        for k in keys:
            if k not in res:
                continue
            old = merged.get(k)
            if isinstance(res[k], list) and isinstance(old, list) and all("name" in r for r in old + res[k]):
                rows = {r["name"]: r for r in old}  # rows from another process's part of the same section
                rows.update({r["name"]: r for r in res[k]})
                merged[k] = list(rows.values())
            else:
                merged[k] = res[k]
        merged["kind"] = "transfer"
        provs = merged.setdefault("provenances", [])  # one block per process that wrote sections
        if "provenance" in keys and not any(p["date"] == res["provenance"]["date"] and
                                            p["argv"] == res["provenance"]["argv"] for p in provs):
            provs.append(res["provenance"])
        for p in provs:
            if p["date"] == res.get("provenance", {}).get("date"):
                p["load_average_end"] = load_average()
        merged.setdefault("section_wall_s", {}).update(res.get("section_wall_s", {}))
        write_json(_OUT["json"], merged)
        write_text(_OUT["md"], markdown(merged))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default="/tmp/digitrec-transfer", help="run folders (kept; finished runs are reused)")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    ap.add_argument("--fractions", default="0.01,0.1,1",
                    help="fewlabel: these fractions of MNIST's training labels (1 = all, the longest)")
    ap.add_argument("--models", default="resnet18,hybrid,paper-cnn",
                    help="pretrain/ablation: only these models' runs (to run parts side by side)")
    ap.add_argument("--with-224", action="store_true", help="ablation: also resnet18@224 (the slowest input size)")
    ap.add_argument("--emnist-source", default="few-6000-scratch-s0",
                    help="run folder (under --work) of the MNIST model the emnist section fine-tunes")
    ap.add_argument("--no-emnist-scratch", action="store_true",
                    help="emnist: skip the from-scratch runs on each fold")
    ap.add_argument("--no-train", action="store_true", help="report the finished runs only; train nothing")
    ap.add_argument("--conclusion", help="a text file whose paragraph goes under ## Conclusion")
    args = ap.parse_args()
    torch.set_num_threads(1)
    global _NO_TRAIN
    _NO_TRAIN = args.no_train
    data_root = Path(os.environ.get("DIGITREC_DATA", "/work/shared/data"))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    slug = f"transfer-{machine_slug()}-{datetime.date.today().isoformat()}"
    _OUT.update(json=RESULTS / f"{slug}.json", md=RESULTS / f"{slug}.md", lock=work / "results.lock")
    res = {"provenance": provenance()}
    keys = ["provenance"]
    if args.conclusion:
        res["conclusion"] = Path(args.conclusion).read_text().strip()
        keys.append("conclusion")
    only = args.only.split(",")
    for section in SECTIONS:
        if section not in only:
            continue
        print(f"== {section}", flush=True)
        t0 = time.perf_counter()
        if section == "speed":
            speed(work, res)
        elif section == "pretrain":
            pretrain(work, res, args.models.split(","))
        elif section == "fewlabel":
            fewlabel(work, res, [float(f) for f in args.fractions.split(",")])
        elif section == "emnist":
            emnist(work, res, data_root, args.emnist_source, not args.no_emnist_scratch)
        else:
            ablation(work, res, args.models.split(","), args.with_224)
        res.setdefault("section_wall_s", {})[section] = round(time.perf_counter() - t0, 1)
        keys += [section] + (["ablation_not_run"] if section == "ablation" else [])
        write(res, keys)
    if only == [""]:  # --only "" --conclusion FILE: add the conclusion, re-render the Markdown
        write(res, [k for k in keys if k != "provenance"])
    print(f"wrote {_OUT['json']} and {_OUT['md']}")


if __name__ == "__main__":
    main()

"""A finished run folder's records, read and type-checked once for `digitrec compare` and `digitrec report`.

A run folder holds metrics.json (test metrics; every finished run) and, for `digitrec train` runs, history.json
(config, per-epoch rows, training time) and model.pt. Files come from disk and may have been edited or damaged: a
value of the wrong type is a one-line error naming the file and the key, never a traceback deep in a table or a
template.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DigitrecError

NUMBER = (int, float)
OPTIONAL_NUMBER = (int, float, type(None))
OPTIONAL_TEXT = (str, type(None))

# Types of the keys that compare and report read. A dict spec checks the keys present ("*": every value); a
# one-item list spec checks every item; REQUIRED says which keys must be there.
METRICS = {"accuracy": NUMBER, "precision_macro": NUMBER, "recall_macro": NUMBER, "f1_macro": NUMBER, "n": int,
           "per_class": {"*": {"precision": NUMBER, "recall": NUMBER, "f1": NUMBER, "support": int}},
           "confusion_matrix": [[int]], "sizes": {"*": int}, "model": str, "dataset": str, "split": str,
           "train_time_s": NUMBER, "train_cpu_s": NUMBER, "epochs": int, "best_epoch": OPTIONAL_NUMBER,
           "device": str, "description": str, "reused_from": str, "data_dir": OPTIONAL_TEXT,
           "trained_at": str, "unfinished": {"epochs_done": int, "epochs_planned": OPTIONAL_NUMBER},
           "confident_errors": {"score": str, "items": [{"index": int, "true": int, "pred": int, "score": NUMBER}]}}
HISTORY = {"epochs": [{"epoch": int, "train_loss": NUMBER, "train_acc": NUMBER, "val_loss": NUMBER,
                       "val_acc": NUMBER, "epoch_time_s": NUMBER}],
           "train_time_s": NUMBER, "config": dict, "dataset": str, "split": str, "device": str, "sizes": {"*": int}}
REQUIRED = {"metrics.json": ("accuracy", "n", "per_class", "confusion_matrix"),
            "history.json": ("epochs", "train_time_s")}


def _type_name(types: Any) -> str:
    types = _tuple(types)
    names = {int: "an integer", float: "a number", str: "a string", dict: "an object", list: "a list",
             bool: "true or false", type(None): "null"}
    return " or ".join(dict.fromkeys("a number" if t in (int, float) and float in types else names[t] for t in types))


def _tuple(spec: Any) -> tuple:
    return spec if isinstance(spec, tuple) else (spec,)


def check_types(value: Any, spec: Any, where: str) -> None:
    """Raise a one-line DigitrecError where `value` does not have the shape `spec` describes."""
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise DigitrecError(f"{where} must be an object, got {type(value).__name__}")
        for key, sub in spec.items():
            for k in (value if key == "*" else [key] if key in value else []):
                check_types(value[k], sub, f"{where}.{k}")
    elif isinstance(spec, list):
        if not isinstance(value, list):
            raise DigitrecError(f"{where} must be a list, got {type(value).__name__}")
        for i, item in enumerate(value):
            check_types(item, spec[0], f"{where}[{i}]")
    elif not isinstance(value, spec) or (isinstance(value, bool) and bool not in _tuple(spec)):  # true is no number
        raise DigitrecError(f"{where} must be {_type_name(spec)}, got {json.dumps(value)[:40]}")


def read_json(path: Path, spec: Any = None) -> Any:
    """A JSON file's content, checked against `spec`; a missing, unreadable or ill-typed file is a DigitrecError."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise DigitrecError(f"{path}: cannot read JSON ({str(e).splitlines()[0][:120]})") from None
    if spec is not None:
        check_types(data, spec, str(path))
        missing = [k for k in REQUIRED.get(path.name, ()) if k not in data]
        if missing:
            raise DigitrecError(f"{path}: no {', '.join(missing)} (not written by digitrec?)")
    return data


@dataclass
class Run:
    """A finished run: its folder, metrics.json, history.json (None for a classical model) and table row."""

    path: Path
    metrics: dict[str, Any]
    history: dict[str, Any] | None = None

    @property
    def title(self) -> str:
        return f"{self.metrics.get('model', self.path.name)} on {self.metrics.get('dataset', '?')}"

    @property
    def provenance(self) -> dict[str, Any] | None:
        """How the run was made (argv, commit, dirty flag, diff hash, hardware), where training recorded it."""
        for record in (self.history or {}, self.metrics):
            found = provenance_of(record)
            if found is not None:
                return found
        return None


def provenance_of(record: dict[str, Any]) -> dict[str, Any] | None:
    """How a run was made, from its history.json or metrics.json: a "provenance" block, or the "sessions" training
    writes (one per start or resume, each with argv, commit, dirty, diff_sha256, hardware). Sessions that ran
    different code give {"mixed": True}: the run as a whole has no one code state."""
    if isinstance(record.get("provenance"), dict):
        return record["provenance"]
    sessions = [s for s in record.get("sessions") or [] if isinstance(s, dict)]
    if not sessions:
        return None
    states = {(s.get("commit"), s.get("dirty"), s.get("diff_sha256")) for s in sessions}
    if len(states) > 1:
        return {"mixed": True, "commit": None, "dirty": None, "diff_sha256": None, "sessions": len(sessions)}
    first = sessions[0]
    commit = first.get("commit") if first.get("commit") not in (None, "unknown") else None
    return {**first, "commit": commit, "date": first.get("date", first.get("started")), "sessions": len(sessions)}


def read_run(path: str | Path, need_history: bool = False) -> Run:
    """The records of a finished run folder, type-checked."""
    path = Path(path)
    if not path.is_dir():
        raise DigitrecError(f"{path}: not a folder (expected a run folder)")
    if not (path / "metrics.json").is_file():
        raise DigitrecError(f"{path}: no metrics.json (not a finished run)")
    if need_history and not (path / "history.json").is_file():
        raise DigitrecError(f"{path}: no history.json (not a `digitrec train` run)")
    metrics = read_json(path / "metrics.json", METRICS)
    history = read_json(path / "history.json", HISTORY) if (path / "history.json").is_file() else None
    return Run(path, metrics, history)

"""The one exception type users see: the CLI prints it as one line and exits 2, the server answers 4xx.

Optional dependencies live in extras (`pip install 'digitrec[onnx]'`); a command that needs one says which.
"""
from __future__ import annotations

import importlib


class DigitrecError(Exception):
    """A problem with the user's input (a path, a file, a flag value), not a bug in digitrec."""


# top-level module → the extra that installs it (pyproject's [project.optional-dependencies])
EXTRAS = {"onnx": "onnx", "onnxruntime": "onnx", "onnxscript": "onnx", "optuna": "tune",
          "fastapi": "serve", "uvicorn": "serve", "multipart": "serve", "python_multipart": "serve"}


def missing_extra(module: str, what: str = "this command") -> DigitrecError:
    """The one-line error for a missing optional dependency."""
    top = module.split(".")[0]
    extra = EXTRAS.get(top)
    hint = f"pip install 'digitrec[{extra}]'" if extra else f"pip install {top}"
    return DigitrecError(f"{what} needs {top}, which is not installed: {hint}")


def require(*modules: str, what: str = "this command") -> None:
    """Import each module now (before any work is done), or raise missing_extra's one-line error."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise missing_extra(module, what) from None


def as_missing_extra(error: ImportError, what: str = "this command") -> DigitrecError | None:
    """missing_extra for an ImportError raised deep inside a command, when it concerns an optional module."""
    name = getattr(error, "name", None) or ""
    return missing_extra(name, what) if name.split(".")[0] in EXTRAS else None

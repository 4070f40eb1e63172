"""`digitrec serve --model FILE`: the HTTP service (/v1/predict, /v1/read, /healthz, /docs) and the web page at /.

The limit flags are made from `digitrec.serve.limits.ServeLimits`, where each one's default and range live.
"""
from __future__ import annotations

import argparse
import math

MAX_WORKERS = 64


def _number(kind):
    """argparse type: a finite int or float; the range is checked by ServeLimits (one line, exit 2 either way)."""
    def parse(text: str):
        try:
            value = float(text) if kind is float else int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"takes a {'number' if kind is float else 'whole number'}, "
                                             f"got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        return value

    return parse


def _shown(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:g}"


def register(sub) -> None:
    from ..serve.limits import numeric_fields

    p = sub.add_parser("serve", help="HTTP service and web page for reading digits")
    p.add_argument("--model", default=None, help="checkpoint (.pt) or ONNX model (.onnx, fastest); "
                                                 "default: the bundled model")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_number(int), default=8000, help="0 picks a free port (printed at start)")
    p.add_argument("--workers", type=_number(int), default=1,
                   help=f"server processes sharing the port, each with its own model (1 to {MAX_WORKERS})")
    for f in numeric_fields():
        scale, kind = f.metadata["scale"], float if f.type in (float, "float") or f.metadata["scale"] != 1 else int
        low, high = f.metadata["range"]
        flag = f.metadata["flag"]
        p.add_argument(f"--{flag}", dest=f.name, type=_number(kind), default=f.default / scale,
                       metavar=flag.rsplit("-", 1)[-1].upper(),
                       help=f"{f.metadata['help']} (default {_shown(f.default / scale)}; "
                            f"{_shown(low / scale)} to {_shown(high / scale)})")
    p.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="a web origin (https://example.org) whose pages may call the API; repeatable. "
                        "Other cross-origin requests get 403")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a host name (or IP) clients use to reach the server, answered besides localhost, "
                        "127.0.0.1 and [::1]; repeatable. On a loopback address other names get 400 (DNS "
                        "rebinding); on other addresses any name is answered unless this names them")
    p.add_argument("--access-log", action="store_true", help="log every request (off: at load it floods the log)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=run)


def limits_from(args: argparse.Namespace):
    from ..serve.limits import ServeLimits, numeric_fields

    values = {}
    for f in numeric_fields():
        value = getattr(args, f.name) * f.metadata["scale"]
        values[f.name] = round(value) if f.type in (int, "int") else value
    return ServeLimits(**values, allow_origins=tuple(args.allow_origin), allow_hosts=tuple(args.allow_host))


def run(args: argparse.Namespace) -> int:
    from ..errors import DigitrecError

    if not 0 <= args.port <= 65535:
        raise DigitrecError(f"--port must be from 0 to 65535, got {args.port}")
    if not 1 <= args.workers <= MAX_WORKERS:
        raise DigitrecError(f"--workers must be from 1 to {MAX_WORKERS}, got {args.workers}")
    limits = limits_from(args)
    try:
        from ..serve.server import serve
    except ImportError as e:
        raise DigitrecError(f"serving needs the 'serve' extra: pip install 'digitrec[serve]' ({e})") from None
    model = args.model
    if model is None:
        from ..reader import default_model_path

        model = default_model_path()
    serve(model, limits, host=args.host, port=args.port, workers=args.workers, log_level=args.log_level,
          access_log=args.access_log, announce=lambda line: print(line, flush=True))
    return 0

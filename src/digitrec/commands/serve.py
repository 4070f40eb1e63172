"""`digitrec serve --model FILE`: the HTTP service (/v1/predict, /v1/read, /healthz, /docs) and the web page at /."""
from __future__ import annotations

import argparse
import socket


def register(sub) -> None:
    p = sub.add_parser("serve", help="HTTP service and web page for reading digits")
    p.add_argument("--model", default=None, help="checkpoint (.pt) or ONNX model (.onnx); default: the bundled model")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed at start)")
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest request body")
    p.add_argument("--max-pixels", type=int, default=40_000_000, help="largest image (width × height)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    p.add_argument("--max-batch", type=int, default=64, help="images per forward pass (micro-batching)")
    p.add_argument("--batch-wait-ms", type=float, default=3.0, help="how long a batch waits for more requests")
    p.add_argument("--keep-alive", type=float, default=15.0,
                   help="seconds an idle connection stays open (longer than clients' own idle expiry, 5 s in httpx)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import DigitrecError

    for name, value, low in (("--port", args.port, 0), ("--max-pixels", args.max_pixels, 1),
                             ("--max-batch", args.max_batch, 1), ("--threads", args.threads or 1, 1)):
        if value < low:
            raise DigitrecError(f"{name} must be at least {low}, got {value}")
    if args.port > 65535:
        raise DigitrecError(f"--port must be at most 65535, got {args.port}")
    for name, value in (("--max-upload-mb", args.max_upload_mb), ("--timeout", args.timeout),
                        ("--keep-alive", args.keep_alive)):
        if not value > 0:
            raise DigitrecError(f"{name} must be positive, got {value}")
    if args.batch_wait_ms < 0:
        raise DigitrecError(f"--batch-wait-ms must not be negative, got {args.batch_wait_ms}")
    try:
        import uvicorn

        from ..serve import create_app
    except ImportError as e:
        raise DigitrecError(f"serving needs the 'serve' extra: pip install 'digitrec[serve]' ({e})") from None
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model = args.model
    if model is None:
        from ..reader import default_model_path

        model = default_model_path()
    app = create_app(model, max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_pixels=args.max_pixels,
                     timeout_s=args.timeout, max_batch=args.max_batch, batch_wait_ms=args.batch_wait_ms)
    # Bind the socket ourselves: a busy port becomes a one-line error, and --port 0 tells us the port it got.
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except (OSError, OverflowError) as e:
        sock.close()
        raise DigitrecError(f"cannot listen on {args.host}:{args.port} ({e.strerror if isinstance(e, OSError) else e})") \
            from None
    host, port = sock.getsockname()[:2]
    url_host = f"[{host}]" if family == socket.AF_INET6 else host
    print(f"digitrec: serving {model} on http://{url_host}:{port}/ (API docs at /docs)", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level=args.log_level, timeout_keep_alive=args.keep_alive))
    server.run(sockets=[sock])
    return 0

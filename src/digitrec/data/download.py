"""Download a dataset's files: resumable, checked against the published sha256, written atomically.

`fetch(src, target_dir)` makes sure all four files of `src` are in `target_dir`; files already there are kept
(`datasets.status(..., check_hashes=True)` checks them). Per-file sources (MNIST) are fetched from each mirror in
turn; zip sources (EMNIST: NIST's ~560 MB gzip.zip) are downloaded once and only the four members are extracted.

Partial downloads are kept as `NAME.part` and resumed with an HTTP Range request on the next try. A file only
ever appears under its final name after its sha256 matched.

Environment:
    DIGITREC_MIRROR   base URL to download from instead of the published ones (a local mirror, tests).
                      Per-file sources fetch DIGITREC_MIRROR + filename, zip sources DIGITREC_MIRROR + the zip's
                      file name (e.g. http://127.0.0.1:8000/gzip.zip). Include the trailing slash.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import posixpath
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path

from tqdm import tqdm

from ..errors import DigitrecError
from ..fileio import atomic_path, sha256_file
from .sources import DatasetSource

MIRROR_ENV = "DIGITREC_MIRROR"
CHUNK = 1 << 16
# What a failed download raises: URLError/HTTPError/timeouts/refused are OSError; a dropped connection mid-body
# can be an HTTPException; a malformed DIGITREC_MIRROR is a ValueError.
_NET_ERRORS = (OSError, http.client.HTTPException, ValueError)


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        reason = f"HTTP {e.code} {e.reason}"
    elif isinstance(e, urllib.error.URLError):
        reason = str(e.reason)
    else:
        reason = str(e) or type(e).__name__
    return " ".join(reason.split())  # the CLI prints errors as one line


def deadline_for(length: int | None) -> float:
    """Seconds a download of `length` bytes may take in all: a minute plus 10 s per MB (100 kB/s), an hour when the
    server does not say how much it will send. A mirror dripping a byte every few seconds hits it; a slow but
    honest link does not."""
    return 3600.0 if length is None else 60.0 + length / 100_000


def _download(url: str, part: Path, *, timeout: float, progress: bool, deadline: float | None = None) -> None:
    """Append the rest of `url` to `part` (starting it if absent), within `deadline` seconds in all (default:
    `deadline_for` the announced length). Raises one of _NET_ERRORS on failure; the .part keeps what arrived."""
    start = time.monotonic()
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=min(timeout, deadline or timeout))
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left past `have`: the .part is complete (the hash check decides)
            return
        raise
    with response:
        # A server that ignores Range answers 200 with the whole file; one that resumes elsewhere is not trusted.
        if have and (response.status != 206
                     or not response.headers.get("Content-Range", "").startswith(f"bytes {have}-")):
            have = 0
        total = None if response.length is None else have + response.length
        limit = start + (deadline if deadline is not None else deadline_for(response.length))
        name = posixpath.basename(urllib.parse.urlparse(url).path)
        with open(part, "ab" if have else "wb") as f, \
                tqdm(total=total, initial=have, desc=name, unit="B", unit_scale=True, unit_divisor=1024,
                     disable=not progress, leave=False) as bar:
            received = have
            while block := response.read1(CHUNK):  # read1: returns what has arrived, not a full CHUNK
                f.write(block)
                bar.update(len(block))
                received += len(block)
                if time.monotonic() > limit:
                    raise TimeoutError(f"gave up after {time.monotonic() - start:.0f} s (the download deadline) "
                                       f"with {received} of {total or '?'} bytes; rerun to resume")
    got = part.stat().st_size
    if total is not None and got < total:  # keep the .part: the next try resumes from here
        raise ConnectionError(f"connection closed after {got} of {total} bytes")


def _download_any(urls: list[str], part: Path, *, timeout: float, progress: bool,
                  deadline: float | None = None) -> None:
    """Try each URL in turn; all failing is one DigitrecError naming each URL and why."""
    failures = []
    for url in urls:
        try:
            _download(url, part, timeout=timeout, progress=progress, deadline=deadline)
            return
        except _NET_ERRORS as e:
            failures.append(f"could not download {url}: {_reason(e)}")
    raise DigitrecError("; ".join(failures))


def _mismatch(name: str, expected: str, actual: str) -> DigitrecError:
    return DigitrecError(f"{name}: sha256 mismatch (expected {expected}, got {actual}); "
                         "the download was deleted, try again or fetch the file by hand")


def _fetch_files(src: DatasetSource, target_dir: Path, missing: list[str], mirrors: list[str], *,
                 timeout: float, progress: bool, deadline: float | None = None) -> None:
    for name in missing:
        part = target_dir / f"{name}.part"
        _download_any([m + name for m in mirrors], part, timeout=timeout, progress=progress, deadline=deadline)
        actual = sha256_file(part)
        if actual != src.sha256[name]:
            part.unlink()  # resuming corrupt bytes would never succeed
            raise _mismatch(name, src.sha256[name], actual)
        os.replace(part, target_dir / name)


def _fetch_zip(src: DatasetSource, target_dir: Path, missing: list[str], url: str, *,
               timeout: float, progress: bool, deadline: float | None = None) -> None:
    part = target_dir / f"{posixpath.basename(urllib.parse.urlparse(url).path) or 'download.zip'}.part"
    _download_any([url], part, timeout=timeout, progress=progress, deadline=deadline)
    try:
        with zipfile.ZipFile(part) as archive:
            absent = [src.zip_member_dir + f for f in missing if src.zip_member_dir + f not in archive.namelist()]
            if absent:
                raise zipfile.BadZipFile(f"it has no {', '.join(absent)}")
            for name in missing:
                member = src.zip_member_dir + name
                h = hashlib.sha256()
                with atomic_path(target_dir / name) as tmp, archive.open(member) as fin, open(tmp, "wb") as fout:
                    while block := fin.read(CHUNK):
                        h.update(block)
                        fout.write(block)
                    if h.hexdigest() != src.sha256[name]:  # raising here makes atomic_path drop the temp file
                        raise _mismatch(name, src.sha256[name], h.hexdigest())
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:  # truncated or corrupt archive
        part.unlink()  # a broken or foreign archive: start from scratch next time
        raise DigitrecError(f"{url}: not the expected archive ({_reason(e)})") from None
    except DigitrecError:
        part.unlink()
        raise
    part.unlink()  # ~560 MB that is no longer needed


def fetch(src: DatasetSource, target_dir: Path, *, progress: bool = True, timeout: float = 30.0,
          deadline: float | None = None) -> None:
    """Make sure every file of `src` is in `target_dir`, downloading (and verifying) only the missing ones.

    `timeout` bounds each wait for the server; `deadline` (seconds) each file's whole download (default:
    `deadline_for` its announced size)."""
    target_dir = Path(target_dir)
    missing = [f for f in src.files if not (target_dir / f).is_file()]
    if not missing:
        return
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DigitrecError(f"cannot create {target_dir}: {e.strerror or e}") from None
    override = os.environ.get(MIRROR_ENV)
    if src.mirrors:
        mirrors = [override] if override else list(src.mirrors)
        _fetch_files(src, target_dir, missing, mirrors, timeout=timeout, progress=progress, deadline=deadline)
    elif src.zip_url:
        url = override + posixpath.basename(urllib.parse.urlparse(src.zip_url).path) if override else src.zip_url
        _fetch_zip(src, target_dir, missing, url, timeout=timeout, progress=progress, deadline=deadline)
    else:
        raise DigitrecError(f"{src.name}: no download location known; put {', '.join(missing)} in {target_dir}")

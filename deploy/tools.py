"""What the deployment tests need from outside, fetched once into ``.state/`` (``make test`` runs this first):

    .venv/bin/python deploy/tools.py

- kustomize, built with ``go install`` from the Go module proxy;
- the CloudNativePG CRDs, from the operator's own Go module (``config/crd/bases``);
- the Compose Specification's JSON Schema, from ``github.com/compose-spec/compose-go/v2`` (``schema/``).

Every version is pinned here. Go's module cache verifies each download against the checksum database.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".state" / "tools" / "bin"
CACHE = ROOT / ".state" / "cache" / "deploy"

KUSTOMIZE_VERSION = "v5.7.1"
CLOUDNATIVE_PG = ("github.com/cloudnative-pg/cloudnative-pg", "v1.27.1")
COMPOSE_GO = ("github.com/compose-spec/compose-go/v2", "v2.16.2")
CNPG_CRDS = {"Cluster": "config/crd/bases/postgresql.cnpg.io_clusters.yaml"}
COMPOSE_SCHEMA = "schema/compose-spec.json"


class ToolError(RuntimeError):
    """A tool or schema could not be fetched."""


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise ToolError("Go is needed to fetch kustomize and the deployment schemas (https://go.dev/dl/)")
    return go


def kustomize() -> Path:
    """The pinned kustomize, installed into ``.state/tools/bin`` on first use."""
    binary = TOOLS / "kustomize"
    if not binary.exists():
        TOOLS.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [_go(), "install", f"sigs.k8s.io/kustomize/kustomize/v5@{KUSTOMIZE_VERSION}"],
            env={**os.environ, "GOBIN": str(TOOLS), "CGO_ENABLED": "0"},
            check=True,
            timeout=600,
        )
    return binary


def module_file(module: str, version: str, path: str) -> Path:
    """One file of a Go module at a pinned version, extracted into ``.state/cache/deploy`` on first use."""
    target = CACHE / f"{module.replace('/', '_')}@{version}" / path
    if target.exists():
        return target
    out = subprocess.run(
        [_go(), "mod", "download", "-json", f"{module}@{version}"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    info = json.loads(out.stdout) if out.stdout.strip() else {}
    if out.returncode != 0 or "Zip" not in info:
        raise ToolError(f"go mod download {module}@{version} failed: {info.get('Error') or out.stderr.strip()}")
    with zipfile.ZipFile(info["Zip"]) as archive:
        body = archive.read(f"{module}@{version}/{path}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".tmp-{os.getpid()}")
    partial.write_bytes(body)
    partial.rename(target)
    return target


def crd_files() -> dict[str, Path]:
    """The CRD manifest of each custom kind the manifests use, by kind."""
    module, version = CLOUDNATIVE_PG
    return {kind: module_file(module, version, path) for kind, path in CNPG_CRDS.items()}


def compose_schema() -> dict[str, Any]:
    module, version = COMPOSE_GO
    loaded: dict[str, Any] = json.loads(module_file(module, version, COMPOSE_SCHEMA).read_text())
    return loaded


def main() -> int:
    try:
        print(f"kustomize: {kustomize()}")
        for kind, path in crd_files().items():
            print(f"{kind} CRD: {path}")
        compose_schema()
        print(f"compose schema: {module_file(*COMPOSE_GO, COMPOSE_SCHEMA)}")
    except (ToolError, subprocess.CalledProcessError) as exc:
        print(f"deploy/tools.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Artifact cache: expensive stages stored under a hash of the config that produced them.

Each artifact is a directory `<root>/<stage>-<hash>/` holding the stage's files (safetensors
weights, datasets saved with `save_to_disk`, JSON), `meta.json`, and `manifest.json` with the
SHA-256 of every file. It is built in a temporary directory and renamed into place, so a killed run
never leaves a half-written artifact that looks complete; a run that is killed resumes from the last
finished stage. On load the manifest is checked: a truncated or corrupted artifact is rebuilt,
never loaded silently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in sorted(obj.items())}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"cannot hash a config value of type {type(obj).__name__}: {obj!r}")


def config_hash(config: Any) -> str:
    """A stable 16-hex-digit hash of a (nested) config of dataclasses, dicts and scalars."""
    blob = json.dumps(_jsonable(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def state_fingerprint(state: dict[str, Any]) -> str:
    """A hash of a state dict's exact contents (keys, dtypes, shapes, bytes): equal weights, equal
    fingerprint, however they were computed."""
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_HOST = socket.gethostname().replace("/", "_")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CorruptArtifact(Exception):
    """An artifact on disk does not match its manifest."""


@dataclass(frozen=True)
class Artifact:
    """A finished, verified stage: its directory and its metadata."""

    path: Path
    meta: dict
    key: str


class ArtifactCache:
    """Content-addressed stage cache rooted at `root`. Counts hits and builds for tests."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.hits = 0
        self.builds = 0

    def key(self, stage: str, config: Any) -> str:
        return f"{stage}-{config_hash(config)}"

    def path(self, stage: str, config: Any) -> Path:
        return self.root / self.key(stage, config)

    def load(self, stage: str, config: Any) -> Artifact | None:
        """The verified artifact of (stage, config), None if absent; a corrupt one is removed."""
        path = self.path(stage, config)
        if not path.exists():
            return None
        try:
            meta = self._verify(path)
        except CorruptArtifact as err:
            print(f"[cache] rebuilding {path.name}: corrupted, {err}", file=sys.stderr, flush=True)
            shutil.rmtree(path, ignore_errors=True)
            return None
        return Artifact(path, meta, path.name)

    def stage(self, stage: str, config: Any, build: Callable[[Path], dict | None],
              fresh: bool = False) -> Artifact:
        """Return the cached artifact of (stage, config), building it with `build(tmpdir)` first
        if needed. `build` writes its files into `tmpdir` and returns JSON metadata."""
        if not fresh:
            art = self.load(stage, config)
            if art is not None:
                self.hits += 1
                return art
        path = self.path(stage, config)
        self._remove_dead_builds(path.name)
        tmp = self.root / f".tmp-{path.name}-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        started = time.perf_counter()
        print(f"[cache] building {path.name} …", file=sys.stderr, flush=True)
        try:
            meta = build(tmp) or {}
            meta = {"stage": stage, "config": _jsonable(config), **meta,
                    "build_seconds": round(time.perf_counter() - started, 3)}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
            files = sorted(p for p in tmp.rglob("*") if p.is_file())
            manifest = {str(p.relative_to(tmp)): {"sha256": _sha256(p), "bytes": p.stat().st_size}
                        for p in files}
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
            if path.exists() and not fresh:
                # Another process (a shard of `lib.fanout`) finished the same artifact first: the
                # cache is content-addressed, so its copy is ours; never delete one being read.
                self.builds += 1
                return Artifact(path, json.loads((path / "meta.json").read_text()), path.name)
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"[cache] built {path.name} in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        self.builds += 1
        return Artifact(path, meta, path.name)

    def _remove_dead_builds(self, key: str) -> None:
        """Delete the temporary directories of `key` left by killed builds (SIGKILL skips the
        clean-up) of this host; a build still running in another process is left alone."""
        for tmp in self.root.glob(f".tmp-{key}-*"):
            host, _, rest = tmp.name[len(f".tmp-{key}-"):].rpartition("-")[0].rpartition("-")
            pid = int(rest) if rest.isdigit() else None
            if host == _HOST and pid is not None and not _alive(pid):
                print(f"[cache] removing {tmp.name}, left by a killed build", file=sys.stderr, flush=True)
                shutil.rmtree(tmp, ignore_errors=True)

    @staticmethod
    def _verify(path: Path) -> dict:
        manifest_path = path / "manifest.json"
        if not manifest_path.exists():
            raise CorruptArtifact("no manifest")
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as err:
            raise CorruptArtifact(f"unreadable manifest: {err}") from None
        for rel, info in manifest.items():
            p = path / rel
            if not p.is_file():
                raise CorruptArtifact(f"missing file {rel}")
            if p.stat().st_size != info["bytes"]:
                raise CorruptArtifact(f"{rel} has {p.stat().st_size} bytes, expected {info['bytes']}")
            if _sha256(p) != info["sha256"]:
                raise CorruptArtifact(f"checksum mismatch in {rel}")
        return json.loads((path / "meta.json").read_text())

    def count(self) -> int:
        """How many finished artifacts the cache holds (not verified: a count for the terminal)."""
        if not self.root.exists():
            return 0
        return sum(1 for p in self.root.iterdir() if (p / "manifest.json").is_file())

    def clear(self) -> None:
        """Delete every artifact under the root (`run_all.sh --fresh`)."""
        shutil.rmtree(self.root, ignore_errors=True)

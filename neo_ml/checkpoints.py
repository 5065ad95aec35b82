"""Checkpoint plumbing shared by the models: atomic writes, SHA-256 checksums and run provenance.

Every write goes to a temporary file beside the target and is renamed into
place, so a reader sees the old file or the new one, never half of one. A
single-file checkpoint also gets ``<file>.sha256`` (``write_verified``),
checked by ``verify_file`` before anything in the file is read.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from neo_ml.errors import CheckpointIntegrityError

TRACKED_PACKAGES = ("neo_ml", "torch", "numpy", "pandas", "scikit-learn", "sqlalchemy", "transformers", "onnxruntime")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def atomic_write(path: str | Path, write: Callable[[Path], None],
                 before_replace: Callable[[Path], None] | None = None) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    A crash or an exception leaves any existing ``path`` untouched.
    ``before_replace(tmp)`` runs once the file is written, before the rename.
    """
    path = Path(path)
    tmp = _temporary_file(path)
    try:
        write(tmp)
        if before_replace is not None:
            before_replace(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_leftovers(path: Path) -> None:
    """Temporary files and folders of ``path`` left by writers that were killed (their pid is gone)."""
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        pid = leftover.name.removeprefix(f".{path.name}.").split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


def _temporary_file(path: Path) -> Path:
    """A new empty file beside ``path``, named with this process's pid so leftovers can be told apart."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


def staging_folder(folder: str | Path) -> Path:
    """A new empty folder beside ``folder`` to write a checkpoint into before ``swap_in_folder``."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(folder)
    _remove_leftovers(folder)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.{os.getpid()}.", suffix=".tmp", dir=folder.parent))
    staging.chmod(0o755)
    return staging


def _retired(folder: Path) -> Path:
    return folder.with_name(f".{folder.name}.old")


def swap_in_folder(staging: Path, folder: str | Path) -> Path:
    """Replace ``folder`` by ``staging``: the old folder steps aside, the new one is renamed in.

    A kill between the two renames leaves only the retired folder, which
    ``recover_folder`` (called by every load and save) puts back.
    """
    folder = Path(folder)
    for file in staging.iterdir():
        if file.is_file():
            _fsync(file)
    retired = _retired(folder)
    if folder.exists():
        shutil.rmtree(retired, ignore_errors=True)
        folder.rename(retired)
    staging.rename(folder)
    _fsync_folder(folder.parent)
    shutil.rmtree(retired, ignore_errors=True)
    return folder


def recover_folder(folder: str | Path) -> None:
    """Put back the previous folder when a swap was killed half way."""
    folder = Path(folder)
    retired = _retired(folder)
    if not folder.exists() and retired.is_dir():
        retired.rename(folder)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: str | Path, document) -> Path:
    """Atomically write ``document`` as indented JSON (values JSON cannot hold are written as text)."""
    text = json.dumps(document, indent=2, default=str)
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_path(path: str | Path) -> Path:
    return Path(f"{path}.sha256")


def _accepted_digests(path: Path) -> list[str]:
    try:
        document = json.loads(checksum_path(path).read_text())
        digests = document["sha256"]
    except FileNotFoundError as exc:
        raise CheckpointIntegrityError(f"{path}: no checksum file {checksum_path(path).name} beside it") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointIntegrityError(f"{checksum_path(path)}: unreadable checksum file ({exc})") from exc
    if not isinstance(digests, list) or not all(isinstance(d, str) for d in digests):
        raise CheckpointIntegrityError(f"{checksum_path(path)}: field 'sha256' must be a list of hex digests")
    return digests


def write_verified(path: str | Path, write: Callable[[Path], None]) -> Path:
    """``atomic_write`` plus a SHA-256 checksum file (``<path>.sha256``) that always matches the file.

    Order matters for a crash at any moment: the checksum file first accepts
    the old and the new digest, then the file is renamed into place, then the
    checksum file is narrowed to the new digest. Whatever step a kill hits,
    ``path`` is whole and its digest is accepted.
    """
    path = Path(path)
    old = [file_sha256(path)] if path.is_file() else []
    new = []

    def accept_both(tmp: Path) -> None:
        new.append(file_sha256(tmp))
        write_json(checksum_path(path), {"file": path.name, "sha256": new + old})

    atomic_write(path, write, accept_both)
    write_json(checksum_path(path), {"file": path.name, "sha256": new})
    return path


def verify_file(path: str | Path) -> str:
    """The file's SHA-256 if its checksum file accepts it; CheckpointIntegrityError otherwise."""
    path = Path(path)
    accepted = _accepted_digests(path)
    digest = file_sha256(path)
    if digest not in accepted:
        raise CheckpointIntegrityError(f"{path}: SHA-256 mismatch with {checksum_path(path).name}; "
                                       "the checkpoint is truncated, corrupt or was edited")
    return digest

"""Safe files for both models: atomic writes, SHA-256 checksums, locks, folder swaps and run provenance.

Every write goes to a temporary file beside the target and is renamed into
place, so a reader sees the old file or the new one, never half of one. A
single-file checkpoint also gets ``<file>.sha256`` (``write_verified``),
checked by ``read_verified`` on the very bytes that are then loaded.

Writers of one checkpoint path take turns (``checkpoint_lock``, an exclusive
``flock`` on ``.<name>.lock`` beside it, across threads and processes), so two
saves at once leave one of them whole; readers take the shared lock, so a
checkpoint cannot be swapped while it is being read. Files and folders get
the permissions the umask gives, as any other file would: a server running
under another account can read what training wrote.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

from neo_ml import paths
from neo_ml.errors import CheckpointError, CheckpointIntegrityError

TRACKED_PACKAGES = ("neo_ml", "torch", "numpy", "pandas", "scikit-learn", "sqlalchemy", "transformers", "onnxruntime")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


_umask_lock = threading.Lock()


def git_commit() -> str | None:
    """The checkout's commit, with a run's provenance (``None`` outside a git checkout)."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.PROJECT_ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it (``/proc/self/status``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:  # elsewhere the only way to read it is to set it for a moment
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _lock_file(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def checkpoint_lock(path: str | Path, shared: bool = False) -> Iterator[None]:
    """Hold the lock of checkpoint ``path``: exclusive for writers, ``shared`` for readers.

    A reader that may not create the lock file (a read-only model store) reads without it: nothing can
    be written there either.
    """
    lock = _lock_file(Path(path))
    try:
        fd = os.open(lock, (os.O_RDONLY if shared else os.O_RDWR) | os.O_CREAT, 0o666)
    except FileNotFoundError:
        if not shared:
            raise
        yield  # no folder yet: nothing to read, the caller says so
        return
    except OSError as exc:
        if shared and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            yield
            return
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def read_checkpoint_file(path: str | Path) -> bytes:
    """The file's bytes; a file this process may not read is a CheckpointError that says so, not an
    integrity error."""
    path = Path(path)
    try:
        return path.read_bytes()
    except PermissionError as exc:
        raise CheckpointError(f"{path}: permission denied for this process (uid {os.getuid()}); make the "
                              f"checkpoint readable by the account that serves it (e.g. chmod a+r)") from exc
    except IsADirectoryError as exc:
        raise CheckpointError(f"{path}: a folder where a checkpoint file was expected") from exc


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
    os.chmod(name, 0o666 & ~_umask())  # mkstemp makes 0600 whatever the umask
    return Path(name)


def staging_folder(folder: str | Path) -> Path:
    """A new empty folder beside ``folder`` to write a checkpoint into before ``swap_in_folder``."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(folder)
    _remove_leftovers(folder)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.{os.getpid()}.", suffix=".tmp", dir=folder.parent))
    staging.chmod(0o777 & ~_umask())  # mkdtemp makes 0700 whatever the umask
    return staging


def _retired(folder: Path) -> Path:
    return folder.with_name(f".{folder.name}.old")


def swap_in_folder(staging: Path, folder: str | Path) -> Path:
    """Replace ``folder`` by ``staging``: the old folder steps aside, the new one is renamed in.

    A kill between the two renames leaves only the retired folder, which
    ``recover_folder`` (called by every load and save) puts back.
    """
    folder = Path(folder)
    mode = 0o666 & ~_umask()
    for file in staging.iterdir():
        if file.is_file():
            file.chmod(mode)  # some writers (safetensors) make 0600 files whatever the umask
            _fsync(file)
    retired = _retired(folder)
    with checkpoint_lock(folder):
        _recover(folder)
        if folder.exists():
            shutil.rmtree(retired, ignore_errors=True)
            folder.rename(retired)
        staging.rename(folder)
        _fsync_folder(folder.parent)
        shutil.rmtree(retired, ignore_errors=True)
    return folder


def _recover(folder: Path) -> None:
    retired = _retired(folder)
    if not folder.exists() and retired.is_dir():
        retired.rename(folder)


def recover_folder(folder: str | Path) -> None:
    """Put back the previous folder when a swap was killed half way (never while a swap is running)."""
    folder = Path(folder)
    if folder.exists() or not _retired(folder).is_dir():
        return  # the usual case, decided without a lock
    if not folder.parent.is_dir() or not os.access(folder.parent, os.W_OK):
        return  # a read-only model store: nothing can be renamed
    with checkpoint_lock(folder):
        _recover(folder)


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
        document = json.loads(read_checkpoint_file(checksum_path(path)))
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
    path.parent.mkdir(parents=True, exist_ok=True)
    new = []
    with checkpoint_lock(path):  # a second writer waits, then replaces this one's file whole
        old = [file_sha256(path)] if path.is_file() else []

        def accept_both(tmp: Path) -> None:
            new.append(file_sha256(tmp))
            write_json(checksum_path(path), {"file": path.name, "sha256": new + old})

        atomic_write(path, write, accept_both)
        write_json(checksum_path(path), {"file": path.name, "sha256": new})
    return path


def _checked(path: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    if digest not in _accepted_digests(path):
        raise CheckpointIntegrityError(f"{path}: SHA-256 mismatch with {checksum_path(path).name}; "
                                       "the checkpoint is truncated, corrupt or was edited")
    return digest


def read_verified(path: str | Path) -> bytes:
    """The file's bytes once its checksum file accepts them: the bytes checked are the bytes used, and no
    writer can swap the file in between (shared lock)."""
    path = Path(path)
    with checkpoint_lock(path, shared=True):
        data = read_checkpoint_file(path)
        _checked(path, data)
    return data


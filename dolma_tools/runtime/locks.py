"""Guard a destination: it must be writable, and only one run may write it at a time.

The lock is a file created with O_EXCL holding the owner's host and pid. A lock left by a
process that no longer exists (a killed run) is taken over, so resuming after a crash just
works; a live owner makes the second run stop with a clear message instead of interleaving
outputs. Remote destinations (s3://) are not locked: object stores have no exclusive create,
and outputs there are published atomically per object anyway.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from typing import Iterator

from dolma_tools.errors import UserError
from dolma_tools.io.files import is_remote, local_path

LOCK_NAME = ".dolma-tools.lock"


def check_writable(directory: str) -> None:
    """Fail before any work if outputs cannot be written to `directory` (read-only, full)."""
    if is_remote(directory):
        return
    directory = local_path(directory)
    try:
        os.makedirs(directory, exist_ok=True)
        probe = os.path.join(directory, f".write-probe-{os.getpid()}")
        with open(probe, "wb") as fh:
            fh.write(b"x" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
        os.remove(probe)
    except OSError as exc:
        reason = {errno.EACCES: "permission denied", errno.EROFS: "read-only file system",
                  errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}.get(
                      exc.errno, exc.strerror or str(exc))
        raise UserError(f"cannot write outputs to {directory}: {reason}") from None


def _owner_alive(content: str) -> bool:
    host, _, pid = content.strip().partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine's lock: assume it is live
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def destination_lock(directory: str | None) -> Iterator[None]:
    if directory is None or is_remote(directory):
        yield
        return
    directory = local_path(directory)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, LOCK_NAME)
    me = f"{socket.gethostname()}:{os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                with open(path) as fh:
                    owner = fh.read()
            except FileNotFoundError:
                continue
            if _owner_alive(owner):
                raise UserError(f"another dolma run ({owner.strip()}) is writing {directory}; wait for it to "
                                f"finish, or remove {path} if that run is gone") from None
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)  # stale lock from a killed run
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(me)
        break
    else:  # pragma: no cover - lost a race twice
        raise UserError(f"could not lock {directory}")
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)

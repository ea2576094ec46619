"""One writer per output folder: a lock file beside the folder, held while a run writes its staging folder.

Two runs into the same --output-dir would share one staging folder (`.NAME.incomplete`): the second clears
what the first is writing and both fail half-way. The lock is `.NAME.lock` beside the target, holding the
writer's pid, host and start time. It is an advisory `flock` on that file, which the kernel releases when
the holder dies however it dies, so a lock left by a killed run is stale by construction and simply taken
over; the file's content only serves the message the second run prints.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from nlp_transfer.errors import UserInputError

try:  # POSIX; elsewhere the lock degrades to the pid written in the file
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

LOCK_SUFFIX = ".lock"


class FolderBusyError(UserInputError):
    """Another live run holds the folder's lock."""


def lock_path(target: Path) -> Path:
    """Where the lock of `target` lives: a hidden name beside it, like the staging folder."""
    return target.parent / f".{target.name}{LOCK_SUFFIX}"


@contextmanager
def folder_lock(target: Path) -> Iterator[None]:
    """Hold the lock of `target` for the duration; refuse at once when another live run holds it."""
    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = _acquire(path, target)
    try:
        yield
    finally:
        # Unlinked while still held, so no third run can take a lock on a file that is about to vanish.
        path.unlink(missing_ok=True)
        handle.close()


def _acquire(path: Path, target: Path) -> IO[str]:
    while True:
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise UserInputError(
                f"{path} is not a lock file nlp-transfer wrote (a link or not a regular file): writing the lock "
                "there could overwrite what it points to. Remove it, or choose another --output-dir."
            )
        try:  # O_NOFOLLOW: a link put there between the check and the open is refused, not followed
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as error:
            raise UserInputError(f"Could not open the lock file {path}: {error.strerror or error}.") from None
        handle = os.fdopen(descriptor, "r+", encoding="utf-8")
        try:
            _lock(handle, path)
        except BlockingIOError:
            holder = _holder(path)
            handle.close()
            raise FolderBusyError(
                f"Another run ({holder}) is writing {target}: its lock {path} is held. Wait for that run to finish, "
                "or choose another --output-dir."
            ) from None
        try:
            same_file = os.fstat(handle.fileno()).st_ino == path.stat().st_ino
        except FileNotFoundError:
            same_file = False
        if not same_file:  # the previous holder removed the file between our open and our lock: try again
            handle.close()
            continue
        _note_stale(handle, path)
        handle.seek(0)
        handle.truncate()
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}, handle)
        handle.flush()
        return handle


def _lock(handle: IO[str], path: Path) -> None:
    if fcntl is not None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    holder = _read(path)  # pragma: no cover - no flock: trust a pid that still runs on this host
    if holder.get("host") == socket.gethostname() and _alive(holder.get("pid")):  # pragma: no cover
        raise BlockingIOError


def _note_stale(handle: IO[str], path: Path) -> None:
    """A lock file left by a run that died without removing it: say so, since it is taken over."""
    handle.seek(0)
    previous = _parse(handle.read())
    if previous.get("pid"):
        logger.info("Took over the lock %s left by a run that is gone (pid %s).", path, previous["pid"])


def _holder(path: Path) -> str:
    holder = _read(path)
    if not holder.get("pid"):
        return "pid unknown"
    host = holder.get("host")
    return f"pid {holder['pid']}" + (f" on {host}" if host and host != socket.gethostname() else "")


def _read(path: Path) -> dict:
    try:
        return _parse(path.read_text(encoding="utf-8"))
    except OSError:
        return {}


def _parse(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _alive(pid: object) -> bool:  # pragma: no cover - only without flock
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""Claiming outputs so that concurrent runs into one folder split the work, and cleaning up
what killed runs left behind."""

from __future__ import annotations

import os
import re
from pathlib import Path

#: Temporary files are named ``.{final name}.{pid}.{random}.tmp`` (see ``files.atomic_write``).
_TEMP = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine.

    Example:
        >>> pid_alive(os.getpid())
        True
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _owner(path: Path) -> int:
    try:
        return int(path.read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError):
        return -1


def clean_stale(folder: Path) -> list[Path]:
    """Remove temporary files and claims of processes that no longer run; returns them.

    Example:
        >>> import tempfile
        >>> clean_stale(Path(tempfile.mkdtemp()))
        []
    """
    removed = []
    for path in folder.iterdir():
        match = _TEMP.match(path.name)
        stale = (match is not None and not pid_alive(int(match.group(1)))) or (
            path.suffix == ".claim" and not pid_alive(_owner(path))
        )
        if stale:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


class OutputClaim:
    """An exclusive claim on one output, held as ``{stem}.claim`` holding the owner's pid.

    ``acquire()`` creates the file with ``O_EXCL``; a claim whose owner no longer runs is taken
    over. Two runs into one folder therefore never edit the same image.

    Example:
        >>> import tempfile
        >>> claim = OutputClaim(Path(tempfile.mkdtemp()) / "cat-zerocon-0123456789.png")
        >>> claim.acquire(), OutputClaim(claim.path.with_suffix(".png")).acquire()
        (True, False)
        >>> claim.release()
    """

    def __init__(self, png: Path) -> None:
        self.path = png.with_suffix(".claim")
        self.held = False

    def acquire(self) -> bool:
        for _ in range(2):
            try:
                handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if pid_alive(_owner(self.path)):
                    return False
                self.path.unlink(missing_ok=True)  # its owner died: take it over
                continue
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(f"{os.getpid()}\n")
            self.held = True
            return True
        return False

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

"""Claiming outputs so that concurrent runs into one folder split the work, and cleaning up
what killed runs left behind."""

from __future__ import annotations

import os
import re
import socket
import tempfile
from pathlib import Path

#: Temporary files are named ``.{final name}.{pid}.{random}.tmp`` (see ``files.atomic_write``).
_TEMP = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine.

    Examples:
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


def process_start(pid: int) -> str:
    """When process ``pid`` started, as the kernel counts it (``""`` where that cannot be read).

    With the pid it names one process for good: a pid that is reused by a later process gets
    another start time.

    Examples:
        >>> process_start(os.getpid()) == process_start(os.getpid())
        True
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return ""
    # The command name (field 2) is in parentheses and may hold spaces; start time is field 22.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


def _owner(path: Path) -> tuple[int, str, str]:
    """``(pid, host, start)`` written in a claim; ``(-1, "", "")`` when it cannot be read."""
    try:
        parts = path.read_text(encoding="utf-8").split()
        return int(parts[0]), parts[1] if len(parts) > 1 else "", parts[2] if len(parts) > 2 else ""
    except (OSError, ValueError, IndexError):
        return -1, "", ""


def _owner_alive(path: Path) -> bool:
    """Whether a claim's owner may still run: same host, a live pid and the same process start
    (a reused pid belongs to another program), or another host (whose processes cannot be
    seen from here, so its claims are never taken over)."""
    pid, host, start = _owner(path)
    if host and host != socket.gethostname():
        return True
    if not pid_alive(pid):
        return False
    now = process_start(pid)
    return start in ("", "-") or not now or now == start


def clean_stale(folder: Path) -> list[Path]:
    """Remove temporary files and claims of processes that no longer run; returns them.

    Examples:
        >>> import tempfile
        >>> clean_stale(Path(tempfile.mkdtemp()))
        []
    """
    removed = []
    for path in folder.iterdir():
        match = _TEMP.match(path.name)
        stale = (match is not None and not pid_alive(int(match.group(1)))) or (
            path.suffix == ".claim" and not _owner_alive(path)
        )
        if stale:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


class OutputClaim:
    """An exclusive claim on one output, held as ``{stem}.claim`` with the owner's pid, host and start.

    ``acquire()`` writes the claim to a temporary file and hard-links it into place, so a claim
    appears complete or not at all and only one run can create it. A claim whose owner no
    longer runs on this host is taken over (a live pid whose process started at another time
    is another program that reused the pid); claims of other hosts are left alone.

    Examples:
        >>> import tempfile
        >>> claim = OutputClaim(Path(tempfile.mkdtemp()) / "cat-zerocon-0123456789.png")
        >>> claim.acquire(), OutputClaim(claim.path.with_suffix(".png")).acquire()
        (True, False)
        >>> claim.release()
    """

    def __init__(self, png: Path) -> None:
        self.path = png.with_suffix(".claim")
        self.held = False

    def _content(self) -> str:
        pid = os.getpid()
        return f"{pid} {socket.gethostname()} {process_start(pid) or '-'}\n"

    def acquire(self) -> bool:
        """Take the claim; ``False`` when a live run holds it.

        Raises:
            OSError: when the claim cannot be written (a full disk); nothing is left behind.
        """
        handle, name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.{os.getpid()}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(self._content())
        except OSError:
            os.unlink(name)
            raise
        try:
            for _ in range(2):
                try:
                    os.link(name, self.path)  # fails if the claim exists
                except FileExistsError:
                    if _owner_alive(self.path):
                        return False
                    self.path.unlink(missing_ok=True)  # its owner died: take it over
                    continue
                self.held = True
                return True
            return False
        finally:
            os.unlink(name)

    def release(self) -> None:
        if self.held:
            try:
                mine = self.path.read_text(encoding="utf-8") == self._content()
            except OSError:
                mine = False
            if mine:
                self.path.unlink(missing_ok=True)
            self.held = False

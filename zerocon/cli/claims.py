"""Claiming outputs so that concurrent runs into one folder split the work, and cleaning up
what killed runs left behind."""

from __future__ import annotations

import contextlib
import math
import os
import re
import socket
import tempfile
import threading
import time
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


#: A claim of another host whose file has not been refreshed for this long is taken over: its
#: owner refreshes it every ``HEARTBEAT_SECONDS`` while it edits, so a claim this old was left
#: by a run that died (or by a container that restarted under a new host name).
CLAIM_TIMEOUT_SECONDS = 600.0
#: How often a running edit refreshes the claims it holds.
HEARTBEAT_SECONDS = 30.0
#: A temporary file (a PNG or sidecar being written) is left alone this long: its writer may
#: run on another host sharing the folder, where its pid means nothing here.
TEMP_GRACE_SECONDS = 120.0


def claim_age(path: Path) -> float:
    """Seconds since a claim file was written or last refreshed (``inf`` when it is gone)."""
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except OSError:
        return math.inf


def _owner_alive(path: Path, timeout: float = CLAIM_TIMEOUT_SECONDS) -> bool:
    """Whether a claim's owner may still run.

    On this host: a live pid with the same process start (a reused pid belongs to another
    program). On another host, whose processes cannot be seen from here: a claim refreshed
    within ``timeout`` seconds (a live owner refreshes it every ``HEARTBEAT_SECONDS``).
    """
    pid, host, start = _owner(path)
    if host and host != socket.gethostname():
        return claim_age(path) < timeout
    if not pid_alive(pid):
        return False
    now = process_start(pid)
    return start in ("", "-") or not now or now == start


def clean_stale(folder: Path, timeout: float = CLAIM_TIMEOUT_SECONDS) -> list[Path]:
    """Remove temporary files and claims of processes that no longer run; returns them.

    A temporary file is removed once its writer's pid runs no more here and it is
    ``TEMP_GRACE_SECONDS`` old (a writer on another host finishes long before). A claim of
    another host counts as stale once it is ``timeout`` seconds old (``0``: every claim of
    another host; ``--take-over-claims``).

    Examples:
        >>> import tempfile
        >>> clean_stale(Path(tempfile.mkdtemp()))
        []
    """
    removed = []
    for path in folder.iterdir():
        match = _TEMP.match(path.name)
        # A temporary file names its writer's pid, which only this host can check: one of a pid
        # not running here may be a live run's on another host, so it must also be old.
        stale = (
            match is not None and not pid_alive(int(match.group(1))) and claim_age(path) > TEMP_GRACE_SECONDS
        ) or (path.suffix == ".claim" and not _owner_alive(path, timeout))
        if stale:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


class OutputClaim:
    """An exclusive claim on one output, held as ``{stem}.claim`` with the owner's pid, host and start.

    ``acquire()`` writes the claim to a temporary file and hard-links it into place, so a claim
    appears complete or not at all and only one run can create it. A claim whose owner no
    longer runs on this host is taken over (a live pid whose process started at another time
    is another program that reused the pid); a claim of another host is taken over once it has
    not been refreshed for ``timeout`` seconds (a held claim is refreshed every
    ``HEARTBEAT_SECONDS`` by a background thread).

    Examples:
        >>> import tempfile
        >>> claim = OutputClaim(Path(tempfile.mkdtemp()) / "cat-zerocon-0123456789.png")
        >>> claim.acquire(), OutputClaim(claim.path.with_suffix(".png")).acquire()
        (True, False)
        >>> claim.release()
    """

    def __init__(self, png: Path, timeout: float = CLAIM_TIMEOUT_SECONDS) -> None:
        self.path = png.with_suffix(".claim")
        self.held = False
        self.timeout = timeout

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
                    if _owner_alive(self.path, self.timeout) or not self._remove_stale():
                        return False
                    continue  # its owner died: take it over
                self.held = True
                _HEARTBEAT.add(self)
                return True
            return False
        finally:
            os.unlink(name)

    def _remove_stale(self) -> bool:
        """Remove the claim just judged stale, unless another run replaced it meanwhile.

        Two runs (on two hosts, say) may judge the same claim stale at once; the first removes
        it and links its own. The claim is therefore moved aside atomically and removed only if
        it is still the stale one; a fresh claim moved aside by mistake is put back.
        """
        try:
            stale = self.path.read_bytes()
            aside = self.path.with_name(f".{self.path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
            os.rename(self.path, aside)
        except OSError:
            return True  # gone already: try to link ours
        try:
            if aside.read_bytes() == stale:
                return True
            with contextlib.suppress(OSError):  # another run's fresh claim: put it back
                os.link(aside, self.path)
            return False
        finally:
            aside.unlink(missing_ok=True)

    def refresh(self) -> None:
        """Touch the claim file, so runs on other hosts see its owner is alive."""
        if self.held:
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        _HEARTBEAT.discard(self)
        if self.held:
            try:
                mine = self.path.read_text(encoding="utf-8") == self._content()
            except OSError:
                mine = False
            if mine:
                self.path.unlink(missing_ok=True)
            self.held = False


class _Heartbeat:
    """One daemon thread that refreshes every held claim every ``HEARTBEAT_SECONDS``."""

    def __init__(self) -> None:
        self._claims: set[OutputClaim] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def add(self, claim: OutputClaim) -> None:
        with self._lock:
            self._claims.add(claim)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="zerocon-claims", daemon=True)
                self._thread.start()
        self._wake.set()  # a running thread starts a new round (and reads the interval again)

    def discard(self, claim: OutputClaim) -> None:
        with self._lock:
            self._claims.discard(claim)

    def _run(self) -> None:
        while True:
            self._wake.wait(HEARTBEAT_SECONDS)
            self._wake.clear()
            with self._lock:
                claims = list(self._claims)
                if not claims:
                    self._thread = None
                    return
            for claim in claims:
                claim.refresh()


_HEARTBEAT = _Heartbeat()

"""Environmental faults: a full disk, a read-only or forbidden folder, a failing disk.

Such a fault is not a run's own failure: every run that writes would hit it, so marking runs
failed one after another only empties the queue into `--retry-failed`. The worker reports it
apart (`RunOutcome.fault`), the driver puts the run back to pending and stops the grid with
`GridFaultError`, one line naming the fault and what to do; the queue stays pending and rerunning
the same command resumes it once the fault is fixed.
"""

from __future__ import annotations

import errno
import sqlite3

#: errno values that name the machine, not the run: space, quota, permissions, the disk itself
ENVIRONMENTAL_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG}
)
#: SQLite's messages for the same faults (sqlite3 gives no errno)
_SQLITE_FAULTS = ("disk is full", "readonly database", "disk i/o error", "unable to open database")


class GridFaultError(OSError):
    """The grid stopped on an environmental fault; the message says which and what to do."""


def environmental_fault(err: BaseException) -> str | None:
    """One line describing the environmental fault behind `err` (or any exception it was
    raised from), None when `err` is a run's own failure."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in ENVIRONMENTAL_ERRNOS:
            where = f"{current.filename}: " if current.filename else ""
            return f"{where}{current.strerror or errno.errorcode[current.errno]}"
        if isinstance(current, sqlite3.OperationalError) and any(
                text in str(current).lower() for text in _SQLITE_FAULTS):
            return f"SQLite: {current}"
        current = current.__cause__ or current.__context__
    return None


def advice(fault: str) -> str:
    """What to do about a fault, from its description."""
    lowered = fault.lower()
    if "space" in lowered or "full" in lowered or "quota" in lowered or "too large" in lowered:
        return "free disk space"
    if "read-only" in lowered or "readonly" in lowered or "permission" in lowered or \
            "not permitted" in lowered:
        return "make the grid folder writable"
    return "check the disk"

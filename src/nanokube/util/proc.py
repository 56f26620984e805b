"""Facts about this process read from /proc."""

from __future__ import annotations

import os
import time


def process_started_monotonic() -> float:
    """When this process was exec'd, on the ``time.monotonic()`` clock (Linux); now elsewhere.

    Start-up times measured from here include the interpreter and imports, as a user waiting sees them."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 overall: starttime, in clock ticks since boot
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        age = uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.monotonic()
    return time.monotonic() - max(age, 0.0)

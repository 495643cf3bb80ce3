"""CPU accounting of a bench run: how much CPU the machine spent on anything but the bench.

The machine is shared and small (2 cores): a test suite running beside the bench changes every figure.
The harness reads the machine's busy CPU time (/proc/stat) at the start and the end, subtracts what the
bench's own processes used (itself, every child it waited for, and the PostgreSQL it started), and reports
the rest as "other processes": near zero means the figures are the bench's alone.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy since boot (every core, /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) * TICK_S


def process_cpu_s(pid: int, with_reaped_children: bool = False) -> float:
    """CPU seconds of one process (and of its children it has reaped); 0 when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + ((cutime + cstime) if with_reaped_children else 0)) * TICK_S


def own_cpu_s() -> float:
    """CPU seconds of this process and of every child it has waited for (servers, wrk, probes)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def postgres_cpu_s(data_dir: Path) -> float:
    """CPU seconds of the PostgreSQL on `data_dir`: the postmaster, what it reaped, its live backends."""
    try:
        postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    total = process_cpu_s(postmaster, with_reaped_children=True)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                total += process_cpu_s(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return total

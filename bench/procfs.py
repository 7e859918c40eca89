"""The benchmark's view of /proc: a process tree, its CPU time and its RSS
(bench/run.py measures each server's whole tree: threads, nginx workers,
uvicorn's worker processes)."""

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def proc_tree(pid):
    """pid and all its descendants."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path("/proc/%s/stat" % d).read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_seconds(pids):
    total = 0
    for p in pids:
        try:
            f = Path("/proc/%d/stat" % p).read_text()
        except OSError:
            continue
        fields = f[f.rfind(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def rss_bytes(pids):
    total = 0
    for p in pids:
        try:
            total += int(Path("/proc/%d/statm" % p).read_text().split()[1]) * PAGE
        except OSError:
            pass
    return total

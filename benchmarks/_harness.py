"""Measurement helpers shared by the benchmark scripts (standard library only).

Workers run in other virtualenvs (DataEval's, SliceLine's) as ``python bench_x.py --worker``;
the script's folder is then first on ``sys.path``, so ``import _harness`` works there too.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

MIB = 1 << 20


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Writes `text` (UTF-8) to `path` atomically: a temporary file in the same folder, fsync,
    rename, then fsync of the folder, so a crash leaves the old file or the new one, never a
    torn one (the standard-library twin of ``datagauge._atomic``: workers run where datagauge
    is not installed)."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode())
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def rss_now() -> int:
    """Resident set size of this process now, bytes (Linux)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    """Peak resident set size of this process so far, bytes (Linux VmHWM).

    Not ``getrusage().ru_maxrss``: Linux carries that over from the parent across fork and
    exec, so a worker started by a big parent would report the parent's peak.
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status; this benchmark needs Linux.")


def reset_peak() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux >= 4.0); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def system_cpu() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as fh:
        f = [int(v) for v in fh.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    return (f[0] + f[1] + f[2] + f[5] + f[6]) / tick, (f[7] if len(f) > 7 else 0) / tick


def cpu_s() -> float:
    """CPU seconds (user + system) this process has used."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def machine_info() -> dict[str, Any]:
    """The machine a table was measured on: CPU, cores, RAM, OS, Python, load."""
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal"):
                mem_kib = int(line.split()[1])
    os_name = platform.platform()
    with contextlib.suppress(OSError), open("/etc/os-release") as fh:
        for line in fh:
            if line.startswith("PRETTY_NAME="):
                pretty = line.split("=", 1)[1].strip().strip('"')
                os_name = f"{pretty}, Linux {platform.release()}"
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "ram_gib": round(mem_kib / 2**20, 1),
        "os": os_name,
        "python": platform.python_version(),
        "loadavg": load,
        "load_1min_at_start": round(load[0], 2),
    }


def run_job(workers: dict[str, Callable[..., dict[str, Any]]], kind: str, job_dir: Path) -> None:
    """Worker side of a measurement: run ``workers[kind](job, job_dir)`` on the job in
    ``job_dir/job.json`` and write its stats, with this process's peak RSS, to
    ``job_dir/stats.json``."""
    job = json.loads((job_dir / "job.json").read_text())
    stats = workers[kind](job, job_dir)
    stats["worker_peak_rss_mib"] = peak_rss() / MIB
    write_text(job_dir / "stats.json", json.dumps(stats))


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    """A temporary folder for one benchmark run's data and jobs, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as name:
        yield Path(name)

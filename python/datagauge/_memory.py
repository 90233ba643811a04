"""Memory an engine will need, checked before it is built.

FAISS allocates inside OpenMP threads: when an allocation fails there, the process can crash
(``std::bad_alloc`` then a segfault or a "double free") instead of raising, and loading FAISS
itself crashes under a tight address-space limit. So the FAISS paths estimate what they will
need and refuse with a :class:`MemoryError` that names the size and a cheaper option before
they allocate. The limits read are the process's address-space limit (``ulimit -v``,
``RLIMIT_AS``) less what it already maps, and the machine's physical memory.
"""

from __future__ import annotations

import os
import re
import resource

__all__ = [
    "BLAS_BYTES",
    "FAISS_LOAD_BYTES",
    "FAISS_WORK_BYTES",
    "THREAD_BYTES",
    "address_space_left",
    "check_memory",
    "gib",
    "physical_memory",
]

#: Address space that loading FAISS maps (its libraries and OpenMP runtime; 330 MiB measured
#: for faiss-cpu 1.15 on x86-64) with a margin.
FAISS_LOAD_BYTES = 400 << 20
#: Address space OpenBLAS (NumPy's BLAS) may map for its buffers on first use; it exits the
#: process, without an exception, when it cannot.
BLAS_BYTES = 256 << 20
#: Address space a FAISS search maps besides its arrays: the BLAS work buffers (measured
#: 178 MiB for IVF on one thread, faiss-cpu 1.15, x86-64).
FAISS_WORK_BYTES = 192 << 20
#: Address space each further FAISS (OpenMP) worker thread maps: its stack, its malloc
#: arena and its BLAS buffers (measured up to 228 MiB).
THREAD_BYTES = 240 << 20


def gib(n_bytes: float) -> str:
    """A size in GiB (MiB below 1 GiB) for messages."""
    if n_bytes < 1 << 30:
        return f"{n_bytes / (1 << 20):.0f} MiB"
    return f"{n_bytes / (1 << 30):.1f} GiB"


def _mapped_bytes() -> int | None:
    """The address space this process maps now (VmSize), or None where unknown."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            found = re.search(r"^VmSize:\s+(\d+)\s+kB", f.read(), re.MULTILINE)
    except OSError:
        return None
    return None if found is None else int(found.group(1)) << 10


def address_space_left() -> int | None:
    """Bytes of address space left under ``RLIMIT_AS``, or None when there is no limit (or
    it cannot be read)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    mapped = _mapped_bytes()
    return None if mapped is None else max(0, soft - mapped)


def physical_memory() -> int | None:
    """The machine's physical memory in bytes, or None where unknown."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def check_memory(needed: int, what: str, instead: str) -> None:
    """Raise MemoryError when `needed` bytes exceed the address space left or the machine's
    memory: `what` needs them, `instead` says what needs less."""
    left = address_space_left()
    if left is not None and needed > left:
        raise MemoryError(
            f"{what} needs about {gib(needed)} of memory, but the process's memory limit "
            f"(ulimit -v) leaves {gib(left)}; {instead}, or raise the limit."
        )
    total = physical_memory()
    if total is not None and needed > total:
        raise MemoryError(
            f"{what} needs about {gib(needed)} of memory, more than this machine's "
            f"{gib(total)}; {instead}."
        )

"""Under a memory limit every engine answers or raises a clear MemoryError: no crash.

Each case runs in a subprocess with ``RLIMIT_AS`` set, since a crash (or FAISS's
allocations) must not take the test run with it.
"""

from __future__ import annotations

import glob
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from datagauge import _memory
from datagauge.neighbors import HNSW, IVF, Exact, _check_faiss_memory, faiss_bytes

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS, /proc")

_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    import datagauge
    lim = int(sys.argv[1]) << 20
    resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    x = np.random.default_rng(0).normal(size=(5000, 48)).astype(np.float32)
    try:
        g = datagauge.neighbor_graph(x, 10, index=sys.argv[2])
    except MemoryError as exc:
        print("MemoryError:", exc)
        sys.exit(3)
    print("ok", "faiss" in sys.modules, g.indices.shape)
    """
)


def _mapped_after_import() -> int:
    out = subprocess.run(
        [sys.executable, "-c", "import datagauge, re; print(open('/proc/self/status').read())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) >> 10
    raise AssertionError("no VmSize")  # pragma: no cover


@pytest.mark.slow
@pytest.mark.parametrize("index", ["exact", "ivf", "hnsw", "flat"])
def test_no_crash_at_any_limit(tmp_path, index):
    script = tmp_path / "run.py"
    script.write_text(_SCRIPT)
    base = _mapped_after_import()
    outcomes = []
    for extra in (30, 150, 400, 700, 1000, 1400):
        proc = subprocess.run(
            [sys.executable, str(script), str(base + extra), index],
            capture_output=True,
            text=True,
            timeout=300,
        )
        # 0: answered; 3: our MemoryError. Anything else (a signal, an abort, a traceback
        # from somewhere else) is a defect.
        assert proc.returncode in (0, 3), (extra, proc.returncode, proc.stderr[-2000:])
        if proc.returncode == 3 and index != "exact":
            # refused before FAISS allocates, with the size and what needs less
            assert "needs about" in proc.stdout, proc.stdout
            assert "raise the limit" in proc.stdout, proc.stdout
        outcomes.append(proc.returncode)
    assert outcomes[-1] == 0  # with enough room every engine answers
    if index == "exact":
        assert all(code == 0 for code in outcomes[1:])  # the compiled engines need little


def test_exact_engines_do_not_load_faiss():
    if glob.glob("/dev/nvidia[0-9]*"):
        pytest.skip("a GPU is visible: the exact engine loads FAISS to use it")
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        import datagauge
        x = np.random.default_rng(0).normal(size=(3000, 40)).astype(np.float32)
        datagauge.neighbor_graph(x, 5)
        datagauge.coverage(x, 5)
        datagauge.neighbor_graph(x[:, :4], 5, index="kdtree")
        datagauge.neighbor_graph(x, 5, index="brute")
        print("faiss" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_memory_error_names_the_size_and_a_cheaper_option(monkeypatch):
    monkeypatch.setattr(_memory, "address_space_left", lambda: 100 << 20)
    with pytest.raises(MemoryError, match=r"the IVF search needs about .* leaves 100 MiB; use "):
        _check_faiss_memory(200_000, 512, 10, IVF(), 2)
    monkeypatch.setattr(_memory, "address_space_left", lambda: None)
    monkeypatch.setattr(_memory, "physical_memory", lambda: 1 << 30)
    with pytest.raises(MemoryError, match=r"more than this machine's 1.0 GiB; use index='exact'"):
        _memory.check_memory(2 << 30, "the HNSW search", "use index='exact'")
    _memory.check_memory(1 << 20, "a small search", "nothing")  # fits: no error


def test_faiss_estimate_grows_with_the_data_and_threads():
    for spec in (IVF(), HNSW(), Exact(engine="flat")):
        small = faiss_bytes(10_000, 64, 10, spec, 1)
        assert faiss_bytes(100_000, 64, 10, spec, 1) > small
        assert faiss_bytes(10_000, 512, 10, spec, 1) > small
        assert faiss_bytes(10_000, 64, 10, spec, 2) > small
        # at least the index's vectors, float32
        assert small > 4 * 10_000 * 64
    assert np.isfinite(faiss_bytes(10**9, 2048, 100, IVF(), 64))

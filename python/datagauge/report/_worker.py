"""The report's background work in a second process: ``python -m datagauge.report._worker DIR``.

The report is single-threaded nearly throughout, so on two cores a long independent step (the
map's UMAP layout: Numba compiling, then the optimisation) runs beside the other sections in
a worker process. The worker is started with the running interpreter and ``-m``, so it imports
datagauge and nothing else of the caller: not the user's script, which multiprocessing's
"spawn" would import again (and run again without an ``if __name__ == "__main__":`` guard).

Arrays travel as ``.npy`` files in a private temporary folder (``in_<name>.npy`` there,
``out_<name>.npy`` back), the task's name and options as ``job.json``; every file is written
atomically (the worker's stderr goes to an anonymous temporary file, with no name on disk).
The worker runs on one thread (OpenMP, MKL, Numba), leaving the other core to the report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from .._atomic import save_json, save_npy

__all__ = ["BackgroundTask", "main"]

Arrays = dict[str, NDArray[Any]]
#: A task: arrays and options in, arrays out. Looked up by name in the worker.
TaskFn = Callable[[Arrays, dict[str, Any]], Arrays]

#: Thread counts of the worker's libraries: one core for it, the other for the report.
_ONE_THREAD = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


def _tasks() -> dict[str, TaskFn]:
    from ._map import umap_task
    from ._sources import cnn_sufficiency_task

    return {"umap": umap_task, "cnn_sufficiency": cnn_sufficiency_task}


class BackgroundTask:
    """One task running in a worker process; :meth:`result` waits for its arrays.

    Parameters
    ----------
    task : str
        Name of the task (``"umap"``).
    arrays : mapping of str to ndarray
        Its input arrays (names are file stems: letters, digits and underscores).
    options : dict
        Its options, JSON-serialisable.
    """

    def __init__(self, task: str, arrays: Mapping[str, NDArray[Any]], options: dict[str, Any]):
        if task not in _tasks():
            raise ValueError(f"unknown background task {task!r}; known: {sorted(_tasks())}.")
        self.task = task
        #: The input arrays, kept to redo the task in this process if the worker fails.
        self.arrays = dict(arrays)
        self.folder = Path(tempfile.mkdtemp(prefix=f"datagauge-{task}-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._error: str | None = None
        # Dropped without result() or close() (the caller raised): stop it, remove the files.
        self._finalizer = weakref.finalize(self, _stop, self.__dict__)
        try:
            for name, arr in arrays.items():
                save_npy(self.folder / f"in_{name}.npy", np.ascontiguousarray(arr))
            save_json(self.folder / "job.json", {"task": task, "options": options})
            env = dict(os.environ)
            env.update(dict.fromkeys(_ONE_THREAD, "1"))
            # The worker imports this very datagauge, wherever the caller found it.
            root = str(Path(__file__).resolve().parents[2])
            env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
            # The worker's stderr goes to an anonymous temporary file (no name on disk; a
            # pipe nobody reads until the end could fill up and stall the worker).
            self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "datagauge.report._worker", str(self.folder)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                env=env,
            )
        except OSError as exc:  # no interpreter to start, no room for the arrays: say so later
            self.close()
            self._error = f"the background {task} process could not start: {exc}."
        except BaseException:
            self.close()
            raise

    def result(self) -> Arrays:
        """Wait for the worker and return its output arrays (the folder is then removed).

        Raises
        ------
        RuntimeError
            The worker did not start, or failed; the message then ends with the last lines it
            wrote to stderr.
        """
        if self._error is not None:
            raise RuntimeError(self._error)
        if self._proc is None:
            raise RuntimeError(f"the background {self.task} task was closed before it finished.")
        try:
            code = self._proc.wait()
            if code != 0:
                tail = ""
                if self._stderr is not None:
                    self._stderr.seek(0)
                    tail = self._stderr.read().decode(errors="replace").strip()
                tail = "\n".join(tail.splitlines()[-5:])
                raise RuntimeError(
                    f"the background {self.task} process exited with status {code}: {tail}"
                )
            return {
                p.stem[len("out_") :]: np.load(p, allow_pickle=False)
                for p in sorted(self.folder.glob("out_*.npy"))
            }
        finally:
            self.close()

    def close(self) -> None:
        """Stop the worker if it still runs and remove its folder (idempotent)."""
        self._finalizer()


def _stop(state: dict[str, Any]) -> None:
    """Kill the worker of a task's state (``_proc``, ``folder``) if it runs; remove the folder."""
    proc, state["_proc"] = state.get("_proc"), None
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()
    err, state["_stderr"] = state.get("_stderr"), None
    if err is not None:
        err.close()
    shutil.rmtree(state["folder"], ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Run the task described in ``DIR/job.json`` on ``DIR/in_*.npy``; write ``DIR/out_*.npy``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m datagauge.report._worker DIR", file=sys.stderr)
        return 2
    folder = Path(args[0])
    job = json.loads((folder / "job.json").read_text(encoding="utf-8"))
    arrays = {p.stem[len("in_") :]: np.load(p, allow_pickle=False) for p in folder.glob("in_*.npy")}
    outputs = _tasks()[job["task"]](arrays, job["options"])
    for name, arr in outputs.items():
        save_npy(folder / f"out_{name}.npy", arr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Every docstring example of the installed package runs and gives what it shows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import datagauge

# Imported only when their optional dependencies are there (Dask, torch).
OPTIONAL = {"datagauge.dask": "dask", "datagauge.embeddings": "torch"}


def _modules() -> list[str]:
    names = ["datagauge"]
    for info in pkgutil.walk_packages(datagauge.__path__, prefix="datagauge."):
        if not info.name.endswith("__main__"):  # importing it runs the CLI
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name):
    for prefix, needed in OPTIONAL.items():
        if name.startswith(prefix):
            pytest.importorskip(needed)
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name, globs={}):
        if test.filename is not None and not test.filename.endswith(".py"):
            continue
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"


def test_the_examples_are_found():
    # The examples of the public functions are in their modules: a finder that found none
    # would make every test above pass without running anything.
    module = importlib.import_module("datagauge.graph")
    found = doctest.DocTestFinder(exclude_empty=True).find(module, "datagauge.graph", globs={})
    assert sum(len(t.examples) for t in found) >= 3

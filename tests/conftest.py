"""Shared test set-up."""

from __future__ import annotations

import contextlib
import warnings

# When a Hypothesis test fails, its pytest plugin imports `hypothesis.extra._patching` (and so
# libcst, which warns that mypy_extensions.TypedDict is deprecated) to suggest a patch. Under
# `filterwarnings = ["error"]` that warning becomes an INTERNALERROR that aborts the whole run
# instead of reporting the failure, so import it once here with the warning silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    with contextlib.suppress(ImportError):
        import hypothesis.extra._patching  # noqa: F401

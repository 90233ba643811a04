"""Warning classes: filter them with ``warnings.filterwarnings(..., category=...)``."""

from __future__ import annotations

__all__ = ["DatagaugeWarning", "ExtrapolationWarning", "PoorFitWarning"]


class DatagaugeWarning(UserWarning):
    """Base class of every warning datagauge emits."""


class PoorFitWarning(DatagaugeWarning):
    """A fitted model describes the measured points badly (e.g. a learning curve's R^2 is low)."""


class ExtrapolationWarning(DatagaugeWarning):
    """A projection reaches far beyond the measured range, where it is much less reliable."""

"""The ``datagauge report`` job: every analysis on one dataset, as HTML and JSON."""

from ._html import HtmlReport, Section
from ._inputs import ReportInputs
from ._pipeline import build_report
from ._sources import from_embedding_files

__all__ = ["HtmlReport", "ReportInputs", "Section", "build_report", "from_embedding_files"]

"""`klint report`: one self-contained HTML page showing a dataset and its findings."""

from curate.report.builder import build_report, collect_records, page, thumbnail, write_report

__all__ = ["build_report", "collect_records", "page", "thumbnail", "write_report"]

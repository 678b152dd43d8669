"""Timeline exporters: the trace event stream written as JSONL, CSV, Chrome/Perfetto
trace JSON, VCD or captioned text, and the JSONL importer for replay.

Each writer streams: `write(event)` per event, `close()` once (which flushes but does
not close the caller's file). See docs/exports.md for the formats and how to open them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TextIO

from gunyah_core.exporters.csv_export import CsvWriter
from gunyah_core.exporters.jsonl import JsonlWriter
from gunyah_core.exporters.perfetto import PerfettoWriter
from gunyah_core.exporters.text import TextWriter
from gunyah_core.exporters.timeline_import import (
    MAX_TIMELINE_BYTES,
    MAX_TIMELINE_EVENTS,
    TimelineError,
    iter_jsonl,
    load_jsonl,
)
from gunyah_core.exporters.vcd import VcdWriter


class TraceWriter(Protocol):
    """What every exporter offers."""

    extension: str
    media_type: str

    def write(self, event: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


#: Format name -> writer class; the names `--format` and the download URLs accept.
EXPORTERS: dict[str, type[TraceWriter]] = {
    "jsonl": JsonlWriter,
    "csv": CsvWriter,
    "perfetto": PerfettoWriter,
    "vcd": VcdWriter,
    "text": TextWriter,
}


def open_writer(fmt: str, fileobj: TextIO) -> TraceWriter:
    """A streaming writer for `fmt` on an open text file; ValueError for unknown formats."""
    try:
        cls = EXPORTERS[fmt]
    except KeyError:
        known = ", ".join(EXPORTERS)
        raise ValueError(f"unknown export format {fmt!r} (expected one of: {known})") from None
    return cls(fileobj)


def export(events: Iterable[Mapping[str, Any]], fmt: str, fileobj: TextIO) -> int:
    """Write every event in `fmt` to `fileobj`; return how many were written."""
    writer = open_writer(fmt, fileobj)
    count = 0
    try:
        for event in events:
            writer.write(event)
            count += 1
    finally:
        writer.close()
    return count


__all__ = [
    "EXPORTERS",
    "MAX_TIMELINE_BYTES",
    "MAX_TIMELINE_EVENTS",
    "CsvWriter",
    "JsonlWriter",
    "PerfettoWriter",
    "TimelineError",
    "TraceWriter",
    "VcdWriter",
    "export",
    "iter_jsonl",
    "load_jsonl",
    "open_writer",
]

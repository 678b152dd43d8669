"""Text exporter: one readable line per event, its caption from ``captions.py``.

``#seq  time  kind  sentence``: for reading a run in a terminal (``run --format text``),
the same words the page shows. Lossy by design: JSONL is the format to replay.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TextIO

from gunyah_core.teaching.captions import caption, duration


def text_line(event: Mapping[str, Any]) -> str:
    """``#41  6 µs  virq.assert  VM_B's vIRQ 962 fires: ...``"""
    return f"#{event.get('seq')}\t{duration(event.get('t'))}\t{event.get('kind')}\t{caption(event)}"


class TextWriter:
    """Streaming text writer: each event written when it arrives."""

    extension = "txt"
    media_type = "text/plain"

    def __init__(self, fileobj: TextIO) -> None:
        self._out = fileobj
        self.count = 0

    def write(self, event: Mapping[str, Any]) -> None:
        self._out.write(text_line(event))
        self._out.write("\n")
        self.count += 1

    def close(self) -> None:
        """Flush; the caller owns the file object."""
        self._out.flush()

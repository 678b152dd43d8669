"""JSONL exporter: the trace exactly as the model records it, one event a line.

This is the lossless format: `timeline_import.load_jsonl` reads it back for replay.
Compact separators and the model's own key order make the output byte-identical for
identical input, so two runs with one seed can be compared with `cmp`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TextIO

#: The separators json.dumps uses: no spaces, so a line is as short as it can be.
COMPACT_SEPARATORS = (",", ":")


def dumps_event(event: Mapping[str, Any]) -> str:
    """Serialise one event compactly, keys in the order the model wrote them."""
    return json.dumps(event, separators=COMPACT_SEPARATORS, allow_nan=False)


class JsonlWriter:
    """Streaming JSONL writer: O(1) memory, each event written when it arrives."""

    extension = "jsonl"
    media_type = "application/x-ndjson"

    def __init__(self, fileobj: TextIO) -> None:
        self._out = fileobj
        self.count = 0

    def write(self, event: Mapping[str, Any]) -> None:
        """Append one event as one line."""
        self._out.write(dumps_event(event))
        self._out.write("\n")
        self.count += 1

    def close(self) -> None:
        """Flush; the file object itself stays open (the caller owns it)."""
        self._out.flush()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

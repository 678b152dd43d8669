"""CSV exporter: one row per trace event, for a spreadsheet.

Columns are `seq,t_ns,kind,vm,vcpu,object,detail,caption`. The first four are common to
every kind; `object` names the Gunyah object the event is about (`msgq:A_to_B`,
`doorbell:bell0`, `virq:961`, `pcpu:0`, `mem:7`); `detail` keeps every other field
as compact JSON, so nothing is lost and unknown kinds need no special case; `caption`
is the sentence the page shows for the event (``gunyah_core/teaching/captions.py``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from typing import Any, TextIO

from gunyah_core.teaching.captions import caption

CSV_COLUMNS = ("seq", "t_ns", "kind", "vm", "vcpu", "object", "detail", "caption")

#: Fields that name the event's object, in priority order, with the prefix shown.
OBJECT_FIELDS = (
    ("msgq", "msgq"),
    ("doorbell", "doorbell"),
    ("virq", "virq"),
    ("pcpu", "pcpu"),
    ("handle", "mem"),
)
#: Fields that give the VM column, in priority order.
VM_FIELDS = ("vm", "src", "owner")
_COMMON_FIELDS = ("seq", "t", "kind")
_COMPACT = (",", ":")


def event_row(event: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten one event into the CSV columns; the rest goes to `detail`."""
    used = set(_COMMON_FIELDS)
    vm = ""
    for key in VM_FIELDS:
        if key in event:
            vm = event[key]
            used.add(key)
            break
    vcpu = event.get("vcpu", "")
    used.add("vcpu")
    obj = ""
    for key, prefix in OBJECT_FIELDS:
        if key in event:
            obj = f"{prefix}:{event[key]}"
            used.add(key)
            break
    rest = {k: v for k, v in event.items() if k not in used}
    detail = json.dumps(rest, separators=_COMPACT, ensure_ascii=False) if rest else ""
    return {
        "seq": event["seq"],
        "t_ns": event["t"],
        "kind": event["kind"],
        "vm": "" if vm is None else vm,
        "vcpu": "" if vcpu is None else vcpu,
        "object": obj,
        "detail": detail,
        "caption": caption(event),
    }


class CsvWriter:
    """Streaming CSV writer: the header at once, then one row per event."""

    extension = "csv"
    media_type = "text/csv"

    def __init__(self, fileobj: TextIO) -> None:
        self._out = fileobj
        # lineterminator "\n": the file is opened by the caller (newline="" or not),
        # and "\r\n" would double up on platforms that translate newlines.
        self._csv = csv.DictWriter(fileobj, fieldnames=CSV_COLUMNS, lineterminator="\n")
        self._csv.writeheader()
        self.count = 0

    def write(self, event: Mapping[str, Any]) -> None:
        """Append one row."""
        self._csv.writerow(event_row(event))
        self.count += 1

    def close(self) -> None:
        """Flush; the caller owns the file object."""
        self._out.flush()

    def __enter__(self) -> CsvWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

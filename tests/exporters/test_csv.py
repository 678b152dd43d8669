"""CSV export read back with csv.DictReader: one row per event, nothing lost."""

from __future__ import annotations

import csv
import io
import json

from gunyah_core.exporters import export
from gunyah_core.exporters.csv_export import CSV_COLUMNS


def _rows(events):
    out = io.StringIO()
    export(events, "csv", out)
    out.seek(0)
    reader = csv.DictReader(out)
    return reader.fieldnames, list(reader)


def test_header_and_one_row_per_event(events):
    fields, rows = _rows(events)
    assert tuple(fields) == CSV_COLUMNS == ("seq", "t_ns", "kind", "vm", "vcpu", "object",
                                            "detail", "caption")
    assert len(rows) == len(events)
    assert [int(r["seq"]) for r in rows] == [e["seq"] for e in events]
    assert [int(r["t_ns"]) for r in rows] == [e["t"] for e in events]
    assert [r["kind"] for r in rows] == [e["kind"] for e in events]


def test_columns_pick_vm_vcpu_and_object(events):
    _, rows = _rows(events)
    by_seq = {int(r["seq"]): r for r in rows}
    hvc = by_seq[4]
    assert (hvc["vm"], hvc["vcpu"], hvc["object"]) == ("VM_A", "VM_A.0", "")
    send = by_seq[5]
    assert (send["vm"], send["object"]) == ("VM_A", "msgq:A_to_B")  # vm from src
    assert by_seq[6]["object"] == "virq:961"
    assert by_seq[13]["object"] == "doorbell:bell0"
    switch = by_seq[2]
    assert (switch["vm"], switch["object"]) == ("", "pcpu:0")


def test_detail_keeps_every_other_field(events):
    _, rows = _rows(events)
    for event, row in zip(events, rows, strict=True):
        detail = json.loads(row["detail"]) if row["detail"] else {}
        rebuilt = dict(detail)
        # Every original field is in a column or in the detail, with its value.
        for key, value in event.items():
            if key in ("seq", "t", "kind"):
                continue
            in_columns = str(value) in (row["vm"], row["vcpu"]) or row["object"].endswith(
                f":{value}")
            assert in_columns or rebuilt.get(key) == value, (event["seq"], key)
    # A payload with a comma and a quote survives the CSV quoting.
    assert json.loads(rows[23]["detail"])["payload"] == 'pong"2'
    assert json.loads(rows[5]["detail"])["payload"] == "ping, 1"

"""JSONL import: round trip, and every malformed input named by its line number."""

from __future__ import annotations

import io
import json

import pytest

from gunyah_core.exporters import TimelineError, export, load_jsonl


def _jsonl(events) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


def test_round_trip_from_text_bytes_and_files(events):
    out = io.StringIO()
    export(events, "jsonl", out)
    text = out.getvalue()
    assert load_jsonl(text) == events
    assert load_jsonl(text.encode()) == events
    assert load_jsonl(io.StringIO(text)) == events
    assert load_jsonl(io.BytesIO(text.encode())) == events


def test_blank_lines_are_skipped_and_a_later_start_is_fine(events):
    tail = events[10:]
    assert load_jsonl("\n" + _jsonl(tail) + "\n\n") == tail


@pytest.mark.parametrize(
    ("mutate", "line_no", "needle"),
    [
        (lambda lines: lines.__setitem__(2, '{"seq": 2, "t": 0,'), 3, "not valid JSON"),
        (lambda lines: lines.__setitem__(1, "[1, 2]"), 2, "expected a JSON object"),
        (lambda lines: lines.__setitem__(1, '{"t": 0, "kind": "x"}'), 2, "'seq'"),
        (lambda lines: lines.__setitem__(1, '{"seq": true, "t": 0, "kind": "x"}'), 2, "'seq'"),
        (lambda lines: lines.__setitem__(1, '{"seq": 1, "t": "0", "kind": "x"}'), 2, "'t'"),
        (lambda lines: lines.__setitem__(1, '{"seq": 1, "t": 0, "kind": ""}'), 2, "'kind'"),
        (lambda lines: lines.__setitem__(1, '{"seq": 1, "t": NaN, "kind": "x"}'), 2, "NaN"),
        (lambda lines: lines.__delitem__(4), 5, "seq 5 does not follow 3"),
        (lambda lines: lines.__setitem__(3, lines[2]), 4, "seq 2 does not follow 2"),
    ],
)
def test_malformed_lines_name_their_line(events, mutate, line_no, needle):
    lines = _jsonl(events).splitlines()
    mutate(lines)
    with pytest.raises(TimelineError) as info:
        load_jsonl("\n".join(lines))
    assert info.value.line_no == line_no
    assert needle in info.value.message
    assert str(info.value).startswith(f"line {line_no}: ")


def test_time_going_backwards_is_rejected(events):
    events[7]["t"] = 10
    with pytest.raises(TimelineError, match="line 8: t 10 is earlier"):
        load_jsonl(_jsonl(events))


def test_size_and_count_limits(events):
    text = _jsonl(events)
    cut = len(text.splitlines()[0]) + 1 + 5  # inside line 2
    with pytest.raises(TimelineError) as info:
        load_jsonl(text, max_bytes=cut)
    assert info.value.line_no == 2
    assert "larger than" in info.value.message
    assert load_jsonl(text, max_bytes=len(text.encode())) == events
    with pytest.raises(TimelineError, match=r"line 11: more than 10 events"):
        load_jsonl(text, max_events=10)


def test_one_huge_line_is_not_read_whole():
    class Source(io.StringIO):
        def readline(self, size=-1):
            assert 0 <= size <= 101  # the reader always bounds its reads
            return super().readline(size)

    with pytest.raises(TimelineError, match="line 1: timeline is larger than 100 bytes"):
        load_jsonl(Source("x" * 10_000), max_bytes=100)


@pytest.mark.parametrize("as_bytes", [True, False], ids=["bytes", "file"])
def test_bytes_that_are_not_utf8_name_their_line(events, as_bytes):
    data = _jsonl(events).encode().replace(b'"seq": 3', b'"seq": 3, "x": "\xff"', 1)
    with pytest.raises(TimelineError, match="line 4: not UTF-8 text"):
        load_jsonl(data if as_bytes else io.BytesIO(data))


def test_bytes_are_cut_at_the_limit_in_the_same_place_as_text(events):
    data = _jsonl(events).encode()
    cut = data.index(b"\n") + 1 + 5  # inside line 2
    for source in (data, data.decode()):
        with pytest.raises(TimelineError, match="line 2: timeline is larger than"):
            load_jsonl(source, max_bytes=cut)
        assert load_jsonl(source, max_bytes=len(data)) == events
    with pytest.raises(TimelineError, match="line 1: timeline is larger than 100 bytes"):
        load_jsonl(b"x" * 10_000, max_bytes=100)

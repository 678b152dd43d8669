"""The command line's promise on hostile input: one line on stderr, exit status 2, fast.

Each case was a traceback or a hang before: deep nesting (RecursionError), 5,000-digit
integers (ValueError), replayed timelines with a forged kind, missing fields (KeyError)
or deep lines, and a spin guest whose work takes no time (a run that never ends).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.core.test_cli import assert_usage_error, cli

QUICK_S = 60  # a hang would be a failure, not a slow pass
HUGE_DIGITS = 5_000
DEEP = 100_000


def scenario(tmp_path: Path, text: str) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return str(path)


def timeline(tmp_path: Path, lines: list[str]) -> str:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def recorded(count: int = 40) -> list[dict]:
    proc = cli("run", "msgq-pingpong", "--events", str(count), timeout=QUICK_S)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.mark.parametrize("command", ["validate", "run"])
def test_deeply_nested_scenario(tmp_path: Path, command: str) -> None:
    path = scenario(tmp_path, "name: x\nvms:\n  - name: A\ntitle: "
                    + "[" * 50_000 + "]" * 50_000 + "\n")
    line = assert_usage_error(cli(command, path, timeout=QUICK_S))
    assert ":4:" in line and "nested deeper than" in line


def test_huge_seed_in_a_scenario_file(tmp_path: Path) -> None:
    path = scenario(tmp_path, f"name: x\nvms:\n  - name: A\nseed: {'9' * HUGE_DIGITS}\n")
    line = assert_usage_error(cli("validate", path, timeout=QUICK_S))
    assert ":4:" in line and f"{HUGE_DIGITS} digits" in line


@pytest.mark.parametrize("digits", [HUGE_DIGITS, 4_000, 20])
def test_huge_seed_on_the_command_line(digits: int) -> None:
    line = assert_usage_error(cli("run", "msgq-pingpong", "--events", "1",
                                  "--seed", "9" * digits, timeout=QUICK_S))
    assert "--seed" in line and "not a seed" in line and len(line) < 400


def test_alias_bomb(tmp_path: Path) -> None:
    levels = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)]
    path = scenario(tmp_path, "name: x\nvms:\n  - name: A\n" + "\n".join(levels)
                    + "\ntitle: *a9\n")
    assert Path(path).stat().st_size < 1000
    assert "aliases" in assert_usage_error(cli("validate", path, timeout=QUICK_S))


@pytest.mark.parametrize("command", ["validate", "run"])
def test_spin_without_work_is_refused_not_run_forever(tmp_path: Path, command: str) -> None:
    path = scenario(tmp_path, "name: spin0\nvms:\n  - name: A\n    program: spin\n"
                    "    params: {work_ns: 0}\n")
    line = assert_usage_error(cli(command, path, timeout=QUICK_S))
    assert "vms[0].params.work_ns" in line and ":5:" in line


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "perfetto", "vcd"])
def test_replay_with_a_field_missing(tmp_path: Path, fmt: str) -> None:
    events = recorded()
    at = next(i for i, e in enumerate(events) if e["kind"] == "sched.switch")
    del events[at]["pcpu"]
    path = timeline(tmp_path, [json.dumps(e) for e in events])
    line = assert_usage_error(cli("run", "--replay", path, "--format", fmt, timeout=QUICK_S))
    assert f"line {at + 1}:" in line and "'pcpu'" in line


@pytest.mark.parametrize("fmt", ["perfetto", "vcd"])
def test_replay_with_a_forged_kind(tmp_path: Path, fmt: str) -> None:
    """A virq.bind line relabelled sched.switch: the fields a switch has are not there."""
    events = recorded()
    events[3]["kind"] = "sched.switch"
    path = timeline(tmp_path, [json.dumps(e) for e in events])
    line = assert_usage_error(cli("run", "--replay", path, "--format", fmt, timeout=QUICK_S))
    assert "line 4:" in line and "sched.switch" in line


def test_replay_with_a_kind_that_is_not_a_kind(tmp_path: Path) -> None:
    events = recorded()
    events[2]["kind"] = "<script>" * 1000
    path = timeline(tmp_path, [json.dumps(e) for e in events])
    line = assert_usage_error(cli("run", "--replay", path, timeout=QUICK_S))
    assert "line 3:" in line and len(line) < 400


def test_replay_of_a_deeply_nested_line(tmp_path: Path) -> None:
    deep = '{"seq": 0, "t": 0, "kind": "user.action", "action": "x", "args": {"a": ' \
        + "[" * DEEP + "]" * DEEP + "}}"
    path = timeline(tmp_path, [deep])
    line = assert_usage_error(cli("run", "--replay", path, timeout=QUICK_S))
    assert "line 1:" in line and "nested too deeply" in line


def test_replay_with_a_huge_integer(tmp_path: Path) -> None:
    path = timeline(tmp_path, ['{"seq": 0, "t": ' + "9" * HUGE_DIGITS + ', "kind": "x.y"}'])
    line = assert_usage_error(cli("run", "--replay", path, timeout=QUICK_S))
    assert "line 1:" in line and len(line) < 400

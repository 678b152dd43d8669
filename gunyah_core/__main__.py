"""Command line: list, validate, run and bench scenarios headless (design.md §3.1).

Bad arguments or input: one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from typing import NoReturn

from .core.engine import NoProgressError
from .exporters import EXPORTERS, TimelineError, load_jsonl, open_writer
from .scenario import MAX_MESSAGE_CHARS, MAX_SEED, ScenarioError, load, preset_names, shorten
from .simulation import Simulation

EXIT_USAGE = 2
DEFAULT_BENCH_MESSAGES = 200_000
MESSAGES_PER_ROUND_TRIP = 2
_DURATION = re.compile(r"^(\d+)(ns|us|ms|s)?$")
_UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, None: 1}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        fail(f"{self.prog}: {message}")


def fail_all(err: ScenarioError) -> NoReturn:
    """Every mistake of a scenario, one line each, exit status 2."""
    if len(err.problems) == 1:
        fail(str(err))
    print(f"error: {len(err.problems)} mistakes", file=sys.stderr)
    for problem in err.problems:
        line = " ".join(problem.one_line().split())
        print(f"  {shorten(line, MAX_MESSAGE_CHARS)}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def fail(message: str) -> NoReturn:
    """One line (an argument quoted in it cut short), exit status 2."""
    line = " ".join(message.split())
    print(f"error: {shorten(line, MAX_MESSAGE_CHARS)}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def duration_ns(text: str) -> int:
    """'5ms' -> 5000000; plain numbers are nanoseconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 500us, 5ms, 1s)")
    return int(match.group(1)) * _UNIT_NS[match.group(2)]


def positive(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}")
    return int(text)


def seed(text: str) -> int:
    """A seed, 0..2**63-1 as in scenario files and on the page."""
    if not text.isdigit() or len(text) > len(str(MAX_SEED)) or int(text) > MAX_SEED:
        raise argparse.ArgumentTypeError(f"not a seed 0..{MAX_SEED}: {shorten(repr(text))}")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m gunyah_core", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="preset scenarios, one a line")
    val = sub.add_parser("validate", help="check a scenario file")
    val.add_argument("file")
    run = sub.add_parser("run", help="run a scenario and write its trace")
    run.add_argument("scenario", nargs="?", help="preset name or scenario file")
    run.add_argument("--seed", type=seed)
    stop = run.add_mutually_exclusive_group()
    stop.add_argument("--until", type=duration_ns, help="simulated time, e.g. 5ms")
    stop.add_argument("--events", type=positive, help="write the first N trace events")
    run.add_argument("--out", help="output file (default: stdout)")
    run.add_argument("--format", choices=sorted(EXPORTERS), default="jsonl")
    run.add_argument("--replay", metavar="JSONL",
                     help="re-export a recorded JSONL timeline instead of simulating")
    lesson = sub.add_parser("lesson", help="lessons: check them headless")
    lesson_sub = lesson.add_subparsers(dest="lesson_command", required=True, parser_class=_Parser)
    lesson_check = lesson_sub.add_parser("check", help="run lessons, resolve every question")
    lesson_check.add_argument("files", nargs="+", metavar="LESSON")
    lesson_check.add_argument("--answers", action="store_true",
                              help="also print each question's answer and deciding event")
    bench = sub.add_parser("bench", help="msgq ping-pong throughput, printed as JSON")
    bench.add_argument("--scenario", default="msgq-pingpong")
    bench.add_argument("--messages", type=positive, default=DEFAULT_BENCH_MESSAGES,
                       help="messages to exchange, rounded up to whole round trips (2 each)")
    bench.add_argument("--no-trace", action="store_true")
    bench.add_argument("--seed", type=seed)
    return parser


def cmd_list(_: argparse.Namespace) -> None:
    for name in preset_names():
        print(name)


def cmd_validate(args: argparse.Namespace) -> None:
    scenario = load(args.file)
    Simulation(scenario, trace_on=False)  # what only building can tell (a program's queues)
    print(f"ok: {scenario.name} ({len(scenario.config['vms'])} VMs)")


def cmd_run(args: argparse.Namespace) -> None:
    if args.replay:
        if args.scenario or args.seed is not None or args.until is not None:
            fail("run: --replay re-exports a recorded timeline; it takes no scenario, "
                 "--seed or --until")
        with open(args.replay, "rb") as fileobj:
            events = load_jsonl(fileobj)
        _write(events, args)
        return
    if not args.scenario:
        fail("run: a scenario (preset or file) or --replay is required")
    sim = Simulation(load(args.scenario), seed=args.seed)
    until = args.until
    if until is None and args.events is None:
        until = duration_ns("5ms")
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    try:
        writer = open_writer(args.format, out)
        written = 0
        limit = args.events

        def sink(event: dict) -> None:
            nonlocal written
            if limit is None or written < limit:
                writer.write(event)
                written += 1

        sim.subscribe(sink)
        sim.run(until_ns=until, max_events=limit, collect=False)
        writer.close()
    finally:
        if args.out:
            out.close()


def _write(events: list[dict], args: argparse.Namespace) -> None:
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    try:
        writer = open_writer(args.format, out)
        for event in events[: args.events] if args.events else events:
            writer.write(event)
        writer.close()
    finally:
        if args.out:
            out.close()


def cmd_bench(args: argparse.Namespace) -> None:
    """Ping-pong of N messages (one message = one send + one receive)."""
    scenario = load(args.scenario)
    ping = next((vm for vm in scenario.config["vms"] if vm.get("program") == "ping"), None)
    if ping is None:
        fail(f"bench: scenario {scenario.name!r} has no ping VM")
    ping.setdefault("params", {})["count"] = -(-args.messages // MESSAGES_PER_ROUND_TRIP)
    sim = Simulation(scenario, seed=args.seed, trace_on=not args.no_trace)
    started, cpu_started = time.perf_counter(), time.process_time()
    sim.run(collect=False)
    seconds = time.perf_counter() - started
    # CPU time as well: on a shared machine the wall clock also counts the waits for a core.
    cpu = max(time.process_time() - cpu_started, 1e-9)
    messages = sum(vm.guest.received for vm in sim.hyp.vms.values())
    print(json.dumps({
        "scenario": scenario.name,
        "tracing": not args.no_trace,
        "messages": messages,
        "events": sim.engine.processed,
        "trace_events": sim.trace.seq,
        "simulated_ns": sim.now,
        "seconds": round(seconds, 4),
        "messages_per_s": round(messages / seconds),
        "events_per_s": round(sim.engine.processed / seconds),
        "trace_events_per_s": round(sim.trace.seq / seconds),
        "cpu_seconds": round(cpu, 4),
        "messages_per_cpu_s": round(messages / cpu),
        "events_per_cpu_s": round(sim.engine.processed / cpu),
    }))


def cmd_lesson(args: argparse.Namespace) -> None:
    """One summary line per good lesson; one line per problem and exit 2 otherwise."""
    from .teaching.lessons import check, event_caption
    problems = 0
    for path in args.files:
        report = check(path)
        if report.ok:
            print(report.summary())
            for result in report.results if args.answers else []:
                if result.event is not None:
                    print(f"  step {result.index + 1}: {json.dumps(result.answer)} "
                          f"(event {result.event['seq']}: {event_caption(result.event)})")
        for problem in report.problems:
            print(f"error: {shorten(problem, MAX_MESSAGE_CHARS)}", file=sys.stderr)
        problems += len(report.problems)
    if problems:
        sys.exit(EXIT_USAGE)


COMMANDS = {"list": cmd_list, "validate": cmd_validate, "run": cmd_run, "bench": cmd_bench,
            "lesson": cmd_lesson}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except BrokenPipeError:  # e.g. piped into head: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ScenarioError as err:
        fail_all(err)
    except (TimelineError, NoProgressError, OSError) as err:
        fail(str(err))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Lessons: guided tours of a scenario where the student predicts, then the model reveals.

A lesson (YAML, validated by ``lesson.schema.json``) names a scenario and a list of
steps. A step shows a caption, highlights objects, may wait for a user action (one of
``actions.ARGUMENTS``), then runs the model: N trace events, until an event matching a
kind and field filter, or until a simulated time. A step may ask a question *before* it
runs. Its answer is never written in the lesson: the question names the event kind, a
filter and the field that holds it, and ``LessonRun`` reads it from the events the step
produced, so a lesson cannot disagree with the model.

Text comes from outside, so it is read with the scenario loader's bounded YAML
(aliases, nesting and integer size bounded; scenario.py) and every error names the
lesson file, the step and the field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..actions import ARGUMENTS, ActionError, check_arguments
from ..core.engine import NoProgressError
from ..core.trace import ALL_KINDS
from ..scenario import (
    MAX_MESSAGE_CHARS,
    MAX_SCENARIO_BYTES,
    Scenario,
    ScenarioError,
    StrictValidator,
    _compose,
    _line_of,
    _path_str,
    _schema_message,
    load,
    parse,
    preset_names,
    shorten,
)
from ..simulation import Simulation
from .captions import caption

SCHEMA_FILE = "lesson.schema.json"
MAX_LESSON_BYTES = 64 * 1024
# A step stops after this many trace events even if its ``until`` event never came
# (the simulator's choice: the longest shipped step needs a few thousand).
MAX_STEP_EVENTS = 50_000
_DURATION = re.compile(r"^(\d+)(ns|us|ms|s)$")
_UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


class LessonError(ScenarioError):
    """A lesson that cannot be used; ``str()`` is one line naming file, step and field."""


def event_caption(event: dict[str, Any]) -> str:
    """The sentence shown with a verdict: the deciding event's caption (captions.py, the
    one place events are worded)."""
    return caption(event)


def duration_ns(value: int | str) -> int:
    """500us -> 500000; an integer is nanoseconds (the schema checked the pattern)."""
    if isinstance(value, int):
        return value
    number, unit = _DURATION.match(value).groups()  # type: ignore[union-attr]
    return int(number) * _UNIT_NS[unit]


def field_value(event: dict[str, Any], path: str) -> Any:
    """The value at dotted ``path`` in ``event``; KeyError when any part is missing."""
    value: Any = event
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(path)
        value = value[part]
    return value


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same type (True is not 1, 1 is not '1')."""
    return type(a) is type(b) and a == b


def matches(event: dict[str, Any], kind: str, where: dict[str, Any]) -> bool:
    if event["kind"] != kind:
        return False
    for path, want in where.items():
        try:
            if not _same(field_value(event, path), want):
                return False
        except KeyError:
            return False
    return True


def _where_text(kind: str, where: dict[str, Any]) -> str:
    return kind + "".join(f" {k}={json.dumps(v)}" for k, v in where.items())


@dataclass(frozen=True)
class Lesson:
    """A validated lesson: its config, its scenario and where it came from."""

    config: dict[str, Any]
    scenario: Scenario
    source: str

    @property
    def title(self) -> str:
        return self.config["title"]

    @property
    def steps(self) -> list[dict[str, Any]]:
        return self.config["steps"]

    @property
    def seed(self) -> int | None:
        return self.config.get("seed")


def schema() -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath(SCHEMA_FILE).read_text())


def load_lesson(path: str) -> Lesson:
    """A lesson file -> Lesson; LessonError on anything wrong."""
    file = Path(path)
    if not file.is_file():
        raise LessonError(f"no lesson file named {path!r}")
    if file.stat().st_size > MAX_LESSON_BYTES:
        raise LessonError(f"file larger than {MAX_LESSON_BYTES} bytes", source=path)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise LessonError(f"not UTF-8 text ({err.reason})", source=path) from None
    return parse_lesson(text, path, base=file.parent)


def parse_lesson(text: str, source: str = "<lesson>", base: Path | None = None) -> Lesson:
    """Parse and validate lesson text; ``base``: where a scenario file name is looked up."""
    if len(text.encode("utf-8", "replace")) > MAX_LESSON_BYTES:
        raise LessonError(f"larger than {MAX_LESSON_BYTES} bytes", source=source)
    try:
        node, data = _compose(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise LessonError(shorten(problem, MAX_MESSAGE_CHARS),
                          line=mark.line + 1 if mark else None, source=source) from None
    if not isinstance(data, dict):
        raise LessonError("a lesson must be a mapping (object)", line=1, source=source)
    errors = sorted(StrictValidator(schema()).iter_errors(data),
                    key=lambda e: list(map(str, e.absolute_path)))

    def fail(message: str, path: list[Any]) -> LessonError:
        return LessonError(message, shorten(_path_str(path)), _line_of(node, path), source)

    if errors:
        raise fail(_schema_message(errors[0]), list(errors[0].absolute_path))
    for i, step in enumerate(data["steps"]):
        _check_step(step, ["steps", i], fail)
    scenario = _scenario(data["scenario"], source, base, fail)
    return Lesson(data, scenario, source)


def _check_step(step: dict[str, Any], at: list[Any], fail: Any) -> None:
    """What the schema cannot say: kinds exist, actions and their arguments are real."""
    matchers = [(step.get("run", {}).get("until"), [*at, "run", "until", "kind"]),
                (step.get("question", {}).get("answer"), [*at, "question", "answer", "kind"])]
    for spec, path in matchers:
        if spec is not None and spec["kind"] not in ALL_KINDS:
            raise fail(f"no event kind {spec['kind']!r} (docs/trace.md lists them)", path)
    action = step.get("action")
    if action is not None:
        if action["name"] not in ARGUMENTS:
            raise fail(f"no action {action['name']!r}; actions: {', '.join(sorted(ARGUMENTS))}",
                       [*at, "action", "name"])
        try:
            check_arguments(action["name"], action.get("args", {}))
        except ActionError as err:
            raise fail(err.message, [*at, "action", "args"]) from None
    if action is not None and "run" not in step and "question" not in step:
        raise fail("a step with an action needs run or question (how far to go after it)",
                   at)


def _scenario(spec: Any, source: str, base: Path | None, fail: Any) -> Scenario:
    if isinstance(spec, dict):
        text = json.dumps(spec, default=str)  # YAML dates become strings, then refused
        if len(text) > MAX_SCENARIO_BYTES:
            raise fail(f"inline scenario larger than {MAX_SCENARIO_BYTES} bytes", ["scenario"])
        try:
            return parse(text, f"{source}: scenario")
        except ScenarioError as err:
            raise fail(err.message, ["scenario", *filter(None, [err.path])]) from None
    if spec in preset_names():
        return load(spec)
    name = Path(spec)
    if name.is_absolute() or ".." in name.parts:
        raise fail("a scenario file must be named relative to the lesson, inside its "
                   f"folder, or be a preset ({', '.join(preset_names())})", ["scenario"])
    try:
        return load(str((base or Path()) / name))
    except ScenarioError as err:
        raise fail(str(err), ["scenario"]) from None


@dataclass
class Verdict:
    """A student's answer judged against the model, with the event that decided it."""

    right: bool
    given: Any
    answer: Any
    event: dict[str, Any]
    caption: str

    def as_dict(self) -> dict[str, Any]:
        """What a page shows after the reveal (JSON-ready)."""
        return {"right": self.right, "given": self.given, "answer": self.answer,
                "event": self.event, "caption": self.caption}


@dataclass
class StepResult:
    """What running one step produced: its events, and its question's answer if any."""

    index: int
    events: list[dict[str, Any]]
    answer: Any = None
    event: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)


class LessonRun:
    """One student's pass through a lesson: ``begin`` a step, take its action, ``run`` it.

    The headless checker and a page player drive the same object, so what the checker
    accepted is what a student sees.
    """

    def __init__(self, lesson: Lesson) -> None:
        self.lesson = lesson
        self.sim = Simulation(lesson.scenario, seed=lesson.seed)
        # The boot, as the page reveals it at load (Simulation.boot), and the rest of its
        # last engine step: the first step starts at the first event the scenario is about.
        boot, rest = self.sim.boot()
        self.events: list[dict[str, Any]] = boot + rest
        self.cursor = len(boot)  # events before it were shown by earlier steps
        self.index = 0
        self.acted = False
        self.results: list[StepResult] = []

    @property
    def done(self) -> bool:
        return self.index >= len(self.lesson.steps)

    @property
    def step(self) -> dict[str, Any]:
        return self.lesson.steps[self.index]

    def where(self, problem: str) -> str:
        return f"step {self.index + 1}: {problem}"

    def prompt(self) -> dict[str, Any]:
        """What the student sees before the step runs (never the answer)."""
        step = self.step
        question = step.get("question")
        return {"step": self.index + 1, "of": len(self.lesson.steps),
                "caption": step["caption"], "highlight": step.get("highlight", []),
                "action": step.get("action"),
                "question": None if question is None else {
                    "ask": question["ask"], "choices": question.get("choices"),
                    "number": "choices" not in question}}

    def take_action(self, name: str | None = None, args: dict[str, Any] | None = None) -> None:
        """Apply the step's action. A student's own (name, args) must be the lesson's
        action: same name, and every argument the lesson gives, with the same value."""
        wanted = self.step.get("action")
        if wanted is None:
            raise ActionError("NO_ACTION", self.where("this step takes no action"))
        if name is not None:
            args = args or {}
            given = {k: v for k, v in wanted.get("args", {}).items() if not _same(args.get(k), v)}
            if name != wanted["name"] or given:
                raise ActionError("WRONG_ACTION", self.where(
                    f"this step wants {wanted['name']} with {json.dumps(wanted.get('args', {}))}"))
        else:
            args = wanted.get("args", {})
        self.sim.act(wanted["name"], dict(args))
        self.events.extend(self.sim.trace.take())
        self.acted = True

    def run_step(self) -> StepResult:
        """Run the current step (taking its action first if nobody did), resolve its
        question from the events it produced, and move to the next step.

        A step ends exactly at its ``until`` event: the events the same engine step made
        after it are shown by the next step, so every question sees its own events.
        """
        step = self.step
        result = StepResult(self.index, [])
        if "action" in step and not self.acted:
            try:
                self.take_action()
            except ActionError as err:
                result.problems.append(self.where(f"action {step['action']['name']} refused: "
                                                  f"{err.message}"))
        try:
            end = self._run(step, result)
        except NoProgressError as err:
            result.problems.append(self.where(str(err)))
            end = len(self.events)
        result.events = self.events[self.cursor:end]
        self.cursor = end
        question = step.get("question")
        if question is not None:
            self._resolve(question, result)
        self._check_highlight(step, result)
        self.results.append(result)
        self.index += 1
        self.acted = False
        return result

    def _more(self) -> bool:
        """Run one engine event; False when nothing is left to run."""
        if self.sim.engine.peek() is None:
            return False
        self.events.extend(self.sim.step())
        return True

    def _run(self, step: dict[str, Any], result: StepResult) -> int:
        """Run the model for ``step``; return the index where its events end."""
        if "run" not in step and "question" not in step:
            return self.cursor  # a caption only: it shows the state as it is
        run = step.get("run") or {"until": step["question"]["answer"]}
        limit = self.cursor + MAX_STEP_EVENTS
        if "events" in run:
            want = self.cursor + run["events"]
            while len(self.events) < want and self._more():
                pass
            return min(want, len(self.events))
        if "time" in run:
            until = duration_ns(run["time"])
            while (len(self.events) < limit and self.sim.engine.peek() is not None
                   and self.sim.engine.peek() <= until):
                self._more()
            # The clock stays at the last event (not moved on to ``until``), as on the
            # page, so an action in the next step happens at the same time there.
            if self.sim.engine.peek() is not None and self.sim.engine.peek() <= until:
                result.problems.append(self.where(
                    f"run.time: {MAX_STEP_EVENTS} events before t={until} ns"))
            return next((i for i in range(self.cursor, len(self.events))
                         if self.events[i]["t"] > until), len(self.events))
        kind, where = run["until"]["kind"], run["until"].get("where", {})
        left = run["until"].get("count", 1)
        i = self.cursor
        while i < limit:
            if i == len(self.events) and not self._more():
                break
            while i < len(self.events):
                if matches(self.events[i], kind, where):
                    left -= 1
                    if not left:
                        return i + 1
                i += 1
        if "run" in step:  # else the question reports it, from the same events
            result.problems.append(self.where(_missing(
                "run.until", kind, where, self.events[self.cursor:],
                f"within {i - self.cursor} events (t={self.sim.now} ns)")))
        return len(self.events)

    def _resolve(self, question: dict[str, Any], result: StepResult) -> None:
        answer = question["answer"]
        kind, where, path = answer["kind"], answer.get("where", {}), answer["field"]
        event = next((e for e in result.events if matches(e, kind, where)), None)
        if event is None:
            result.problems.append(self.where(_missing(
                "question.answer", kind, where, result.events, "in this step")))
            return
        try:
            value = field_value(event, path)
        except KeyError:
            result.problems.append(self.where(
                f"question.answer.field: {kind} event has no field {path!r} "
                f"(fields: {', '.join(_fields(event))})"))
            return
        result.answer, result.event = value, event
        choices = question.get("choices")
        if choices is not None and not any(_same(value, c) for c in choices):
            result.problems.append(self.where(
                f"question.choices: the model's answer {json.dumps(value)} is not among "
                f"{json.dumps(choices)}"))
        elif choices is None and (isinstance(value, bool) or not isinstance(value, int)):
            result.problems.append(self.where(
                f"question.answer.field: {path!r} is {json.dumps(value)}, not a number "
                "(give choices for a question that is not a number)"))

    def _check_highlight(self, step: dict[str, Any], result: StepResult) -> None:
        hyp = self.sim.hyp
        names = {*hyp.vms, *hyp.msgqs, *hyp.doorbells,
                 *(v.id for vm in hyp.vms.values() for v in vm.vcpus),
                 *(f"pCPU{p.index}" for p in hyp.pcpus)}
        for name in step.get("highlight", []):
            if name not in names:
                result.problems.append(self.where(f"highlight: no object named {name!r}"))


def _missing(what: str, kind: str, where: dict[str, Any], events: list[dict[str, Any]],
             scope: str) -> str:
    """Why no event matched: a filter field that no such event has, or none came."""
    same_kind = [e for e in events if e["kind"] == kind]
    absent = [k for k in where if same_kind and all(not _has(e, k) for e in same_kind)]
    if absent:
        return (f"{what}.where: {kind} events have no field {absent[0]!r} "
                f"(fields: {', '.join(_fields(same_kind[0]))})")
    return f"{what}: no {_where_text(kind, where)} event {scope}"


def _has(event: dict[str, Any], path: str) -> bool:
    try:
        field_value(event, path)
    except KeyError:
        return False
    return True


def _fields(event: dict[str, Any]) -> list[str]:
    out = []
    for key, value in event.items():
        if key in ("seq", "t", "kind"):
            continue
        if isinstance(value, dict) and value and len(value) <= 8:
            out.extend(f"{key}.{sub}" for sub in value)
        else:
            out.append(key)
    return out


def grade(result: StepResult, given: Any) -> Verdict:
    """Right or wrong, with the deciding event and its caption (the step has run)."""
    if result.event is None:
        raise ValueError(f"step {result.index + 1} has no resolved question")
    return Verdict(_same(given, result.answer) or _number_equal(given, result.answer),
                   given, result.answer, result.event, event_caption(result.event))


def _number_equal(a: Any, b: Any) -> bool:
    """A number typed as 3 or 3.0 is the same answer (never a bool)."""
    return (all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b))
            and a == b)


@dataclass
class CheckReport:
    """A lesson run headless: every step's answer, and every problem found."""

    lesson: Lesson | None
    source: str
    results: list[StepResult]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        assert self.lesson is not None
        questions = sum(1 for s in self.lesson.steps if "question" in s)
        return (f"ok: {self.source}: {self.lesson.title} ({len(self.lesson.steps)} steps, "
                f"{questions} questions, scenario {self.lesson.scenario.name})")


def _highlight_keys(run: LessonRun, names: list[str]) -> list[str]:
    """The page diagram's keys for a step's highlight names ("vm:X", "msgq:Q", ...)."""
    hyp = run.sim.hyp
    vcpus = {v.id for vm in hyp.vms.values() for v in vm.vcpus}
    prefix = [(hyp.vms, "vm"), (hyp.msgqs, "msgq"), (hyp.doorbells, "bell"), (vcpus, "vcpu")]
    return [next((f"{p}:{name}" for table, p in prefix if name in table), name)
            for name in names]


def page_plan(path: str) -> dict[str, Any]:
    """What a lesson player on the page needs, from one headless run (LessonError if the
    lesson is broken): per step its prompt, action, the answer's *location* (never its
    value), the seq range of its events, which the page reveals in the same
    deterministic run (same scenario, seed and actions at the same events), and the
    action log at its start (what rebuilds the run there: a link to the step)."""
    lesson = load_lesson(path)
    run = LessonRun(lesson)
    steps = []
    last = run.events[run.cursor - 1]["seq"] if run.cursor else -1  # the boot's last
    while not run.done:
        step, prompt = run.step, run.prompt()
        # The action log at the step's start: a link to the step replays it (webapp).
        prompt["actions"] = [dict(entry) for entry in run.sim.action_log]
        result = run.run_step()
        if result.problems:
            raise LessonError(result.problems[0], source=path)
        question = step.get("question")
        if question is not None:
            prompt["question"]["answer"] = question["answer"]
            prompt["question"]["explain"] = question.get("explain", "")
        prompt["highlight_keys"] = _highlight_keys(run, prompt["highlight"])
        prompt["first_seq"] = last + 1
        last = result.events[-1]["seq"] if result.events else last
        prompt["last_seq"] = last
        steps.append(prompt)
    spec = lesson.config["scenario"]
    return {"title": lesson.title, "chapter": lesson.config.get("chapter", ""),
            "summary": lesson.config.get("summary", ""),
            "scenario": spec if isinstance(spec, str) else None,
            "scenario_text": json.dumps(spec) if isinstance(spec, dict) else None,
            "seed": lesson.seed, "steps": steps}


def lesson_index(folder: str | Path) -> list[dict[str, Any]]:
    """Every lesson file in ``folder`` that loads, in file-name order, for a picker:
    file, title, chapter, steps, questions (a broken one is left out: see ``check``)."""
    out = []
    for path in sorted(Path(folder).glob("*.yaml")):
        try:
            lesson = load_lesson(str(path))
        except ScenarioError:
            continue
        out.append({"file": path.name, "title": lesson.title,
                    "chapter": lesson.config.get("chapter", ""), "steps": len(lesson.steps),
                    "questions": sum(1 for s in lesson.steps if "question" in s)})
    return out


def check(path: str) -> CheckReport:
    """Load and run a lesson headless, resolving every question; collect all problems."""
    try:
        lesson = load_lesson(path)
    except ScenarioError as err:
        return CheckReport(None, path, [], [str(err)])
    run = LessonRun(lesson)
    problems: list[str] = []
    while not run.done:
        result = run.run_step()
        problems.extend(f"{path}: {p}" for p in result.problems)
    return CheckReport(lesson, path, run.results, problems)

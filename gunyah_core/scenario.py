"""Scenario files (YAML or JSON) -> validated config -> a built Hypervisor.

One JSON Schema (``scenario.schema.json``, published for editors) validates the
shape; a second pass checks what a schema cannot (names that must exist, pCPU
indexes). Every error names the field and, for files, the line. YAML is a superset
of JSON, so one loader reads both.

Text comes from outside (an upload, a file), so the loader bounds what a few bytes can
grow into before anything is built: YAML aliases (a "billion laughs" expands 300 bytes
into gigabytes), nesting depth (Python recursion), integer digits (CPython refuses to
convert more than 4300), and the size of any value quoted back in an error.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

PRESET_DIR = "presets"
SCHEMA_FILE = "scenario.schema.json"
MAX_SCENARIO_BYTES = 256 * 1024
# Bounds on what the text may expand into (the simulator's choices; docs/limits.md).
MAX_YAML_ALIASES = 32            # a scenario repeats a block (e.g. params) a few times
MAX_EXPANDED_CHARS = 4 * MAX_SCENARIO_BYTES  # scalar characters once aliases are expanded
MAX_NESTING_DEPTH = 32           # the schema's deepest value is 6 levels down
MAX_INTEGER_DIGITS = 40          # the schema's largest integer, 2**64 - 1, has 20 digits
                                 # (hex and binary digits count as digits too)
MAX_SHOWN_CHARS = 60             # a value quoted in an error message, at most
MAX_MESSAGE_CHARS = 300          # an error message, at most
MAX_PROBLEMS = 50                # mistakes listed for one file, at most
MAX_SEED = 2**63 - 1             # seeds are 0..2**63 - 1 everywhere (file, CLI, web)


class ScenarioError(ValueError):
    """A scenario that cannot be built; ``str()`` names field and line of each mistake.

    ``problems`` lists every mistake found (the first is also ``message``/``path``/``line``),
    so a writer fixes them all in one go rather than one per upload.
    """

    def __init__(self, message: str, path: str = "", line: int | None = None,
                 source: str = "", problems: list[ScenarioError] | None = None) -> None:
        self.message, self.path, self.line, self.source = message, path, line, source
        self.problems: list[ScenarioError] = problems or [self]
        if len(self.problems) > 1:
            super().__init__(f"{len(self.problems)} mistakes: "
                             + "; ".join(p.one_line() for p in self.problems))
        else:
            super().__init__(self.one_line())

    def one_line(self) -> str:
        where = self.source + (f":{self.line}" if self.line else "")
        parts = [p for p in (where, self.path) if p]
        return ": ".join([*parts, self.message])

    def as_dicts(self) -> list[dict[str, Any]]:
        """Each mistake as {message, path, line}, for the page to list."""
        return [{"message": p.message, "path": p.path, "line": p.line} for p in self.problems]


def _raise_all(problems: list[ScenarioError]) -> None:
    """Raise ``problems`` (in file order, at most MAX_PROBLEMS) as one ScenarioError."""
    if not problems:
        return
    problems = sorted(problems, key=lambda p: p.line or 0)[:MAX_PROBLEMS]
    first = problems[0]
    raise ScenarioError(first.message, first.path, first.line, first.source, problems)


def shorten(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


class _Refused(yaml.MarkedYAMLError):
    """Text that is valid YAML but beyond one of the bounds above."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses, while composing, what would expand beyond the bounds.

    PyYAML's composer returns the anchored node again for each alias, so the node graph
    stays small while the constructed value can be exponential; it also recurses once
    per nesting level. Both are checked here, before construction.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                raise _Refused(f"more than {MAX_YAML_ALIASES} aliases (*name)",
                              self.peek_event().start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_NESTING_DEPTH:
                raise _Refused(f"nested deeper than {MAX_NESTING_DEPTH} levels",
                              self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: Any) -> int:
        digits = sum(c in string.hexdigits for c in str(node.value).lower().lstrip("+-0bx"))
        if digits > MAX_INTEGER_DIGITS:
            raise _Refused(f"an integer of {digits} digits (at most {MAX_INTEGER_DIGITS})",
                          node.start_mark)
        return super().construct_yaml_int(node)


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


def _expanded_chars(root: Any) -> int:
    """Scalar characters of the tree with every alias expanded, without expanding it
    (each shared node is measured once); stops counting past the bound."""
    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if isinstance(node, yaml.ScalarNode):
            total = len(node.value) + 1
        else:
            children = (node.value if isinstance(node, yaml.SequenceNode)
                        else [n for pair in node.value for n in pair])
            total = 1
            for child in children:
                total += size(child)
                if total > MAX_EXPANDED_CHARS:
                    break
        sizes[id(node)] = total
        return total

    return size(root)  # recursion is bounded by MAX_NESTING_DEPTH


def _compose(text: str) -> tuple[Any, Any]:
    """(node, data) of one YAML document, within the bounds above."""
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_chars(node) > MAX_EXPANDED_CHARS:
            raise _Refused(f"aliases expand it beyond {MAX_EXPANDED_CHARS} characters",
                          node.start_mark)
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def _strict_integer(_checker: Any, value: Any) -> bool:
    """JSON Schema's integer admits 2.0; a count of vCPUs must be a real int."""
    return isinstance(value, int) and not isinstance(value, bool)


def _finite_number(_checker: Any, value: Any) -> bool:
    """NaN passes minimum and maximum (every comparison is false); refuse it here."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


# The JSON Schema validator every input of the project uses (scenarios, lessons, socket
# payloads): strict integers, finite numbers.
StrictValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"integer": _strict_integer, "number": _finite_number}))


def _schema_message(err: jsonschema.ValidationError) -> str:
    """jsonschema's message, with the offending value (its repr) cut short."""
    message = err.message
    shown = repr(err.instance)
    if len(shown) > MAX_SHOWN_CHARS and shown in message:
        message = message.replace(shown, shorten(shown))
    return shorten(message, MAX_MESSAGE_CHARS)


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: the config dict (defaults filled in) plus where it came from."""

    config: dict[str, Any]
    source: str

    @property
    def name(self) -> str:
        return self.config["name"]


def schema() -> dict[str, Any]:
    return yaml.safe_load(resources.files(__package__).joinpath(SCHEMA_FILE).read_text())


def preset_names() -> list[str]:
    folder = resources.files(__package__).joinpath(PRESET_DIR)
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load(name_or_path: str) -> Scenario:
    """A preset name or a file path -> Scenario; ScenarioError on anything wrong."""
    if name_or_path in preset_names():
        path = resources.files(__package__).joinpath(PRESET_DIR, f"{name_or_path}.yaml")
        return parse(path.read_text(), f"preset {name_or_path}")
    path = Path(name_or_path)
    if not path.is_file():
        raise ScenarioError(f"no preset or file named {name_or_path!r} "
                            f"(presets: {', '.join(preset_names())})")
    if path.stat().st_size > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"file larger than {MAX_SCENARIO_BYTES} bytes", source=str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ScenarioError(f"not UTF-8 text ({err.reason})", source=str(path)) from None
    return parse(text, str(path))


def parse(text: str, source: str = "<scenario>") -> Scenario:
    """Parse and validate scenario text (YAML or JSON)."""
    if len(text.encode("utf-8", "replace")) > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"larger than {MAX_SCENARIO_BYTES} bytes", source=source)
    try:
        node, data = _compose(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        prefix = "" if isinstance(err, _Refused) else "not valid YAML/JSON: "
        raise ScenarioError(prefix + shorten(problem, MAX_MESSAGE_CHARS),
                            line=line, source=source) from None
    if not isinstance(data, dict):
        raise ScenarioError("a scenario must be a mapping (object)", line=1, source=source)
    validator = StrictValidator(schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    _raise_all([ScenarioError(_schema_message(err), shorten(_path_str(list(err.absolute_path))),
                              _line_of(node, list(err.absolute_path)), source)
                for err in errors])  # every schema mistake at once, not only the first
    config = _with_defaults(data)
    _check_references(config, node, source)
    return Scenario(config, source)


def _path_str(path: list[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(node: Any, path: list[Any]) -> int | None:
    """Line (1-based) of the YAML node at ``path``, as near as the tree allows."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if k.value == part]
            if not match:
                break
            node = match[0][1]
        elif (isinstance(node, yaml.SequenceNode) and isinstance(part, int)
              and part < len(node.value)):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def _with_defaults(data: dict[str, Any]) -> dict[str, Any]:
    config = dict(data)
    config.setdefault("pcpus", 2)
    config.setdefault("seed", 0)
    config.setdefault("msgqs", [])
    config.setdefault("doorbells", [])
    config.setdefault("virtio_mmios", [])
    config.setdefault("debug_capids", False)
    return config


def _check_references(config: dict[str, Any], node: Any, source: str) -> None:
    from .builder import RESERVED_VMS  # the always-present RM and primary VM

    problems: list[ScenarioError] = []

    def fail(message: str, path: list[Any]) -> None:
        problems.append(ScenarioError(message, _path_str(path), _line_of(node, path), source))

    vm_names = set(RESERVED_VMS)
    for i, vm in enumerate(config["vms"]):
        if vm["name"] in vm_names and vm["name"] != "HLOS":
            fail(f"VM name {vm['name']!r} is used twice or reserved", ["vms", i, "name"])
        vm_names.add(vm["name"])
        if "demand_paging" in vm and not vm.get("proxy"):
            fail("demand paging needs a proxy-scheduled VM (proxy: true): its owner's "
                 "vcpu_run hears of the fault", ["vms", i, "demand_paging"])
        for j, pcpu in enumerate(vm.get("affinity", [])):
            if pcpu >= config["pcpus"]:
                fail(f"pCPU {pcpu} does not exist (pcpus: {config['pcpus']})",
                     ["vms", i, "affinity", j])
    objects: set[str] = set()
    for kind in ("msgqs", "doorbells"):
        for i, obj in enumerate(config[kind]):
            if obj["name"] in objects:
                fail(f"object name {obj['name']!r} is used twice", [kind, i, "name"])
            objects.add(obj["name"])
            for end in ("sender", "receiver"):
                if obj[end] not in vm_names:
                    fail(f"no VM named {obj[end]!r}", [kind, i, end])
            if obj["sender"] == obj["receiver"]:
                fail("sender and receiver must be different VMs", [kind, i, "receiver"])
    for i, dev in enumerate(config["virtio_mmios"]):
        if dev["name"] in objects:
            fail(f"object name {dev['name']!r} is used twice", ["virtio_mmios", i, "name"])
        objects.add(dev["name"])
        for end in ("frontend", "backend"):
            if dev.get(end, "HLOS") not in vm_names:
                fail(f"no VM named {dev[end]!r}", ["virtio_mmios", i, end])
        if dev["frontend"] == dev.get("backend", "HLOS"):
            fail("frontend and backend must be different VMs", ["virtio_mmios", i, "frontend"])
    for i, q in enumerate(config["msgqs"]):
        depth = q.get("depth", 8)
        if q.get("notempty_thd", 1) > depth:
            fail(f"must be at most depth ({depth})", ["msgqs", i, "notempty_thd"])
        if q.get("notfull_thd", 0) >= depth:
            fail(f"must be below depth ({depth})", ["msgqs", i, "notfull_thd"])
    for i, vm in enumerate(config["vms"]):
        params = vm.get("params", {})
        for key in ("tx", "rx", "doorbell", "virtio"):
            if key in params and params[key] not in objects:
                fail(f"no msgq, doorbell or virtio device named {params[key]!r}",
                     ["vms", i, "params", key])
    _raise_all(problems)

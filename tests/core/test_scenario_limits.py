"""Hostile scenario text is refused quickly, with one short line naming the field and line:
YAML alias bombs, deep nesting, huge integers, NaN, and values too long to quote."""

from __future__ import annotations

import pytest

from gunyah_core import Simulation, parse
from gunyah_core.scenario import (
    MAX_INTEGER_DIGITS,
    MAX_MESSAGE_CHARS,
    MAX_NESTING_DEPTH,
    MAX_SEED,
    MAX_YAML_ALIASES,
    ScenarioError,
)

VMS = "vms:\n  - name: VM_A\n"


def refusal(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        Simulation(parse(text, "s.yaml"))
    assert "\n" not in str(info.value)
    assert len(str(info.value)) <= MAX_MESSAGE_CHARS + 40
    return info.value


def laughs(levels: int, fanout: int = 9, leaf: str = '"lol"') -> str:
    """A billion-laughs document: each level repeats the one before ``fanout`` times."""
    lines = [f"l0: &l0 [{', '.join([leaf] * fanout)}]"]
    for n in range(1, levels):
        lines.append(f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * fanout)}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_at_the_alias_that_passes_the_limit() -> None:
    text = f"name: bomb\n{VMS}description: &d x\n" + laughs(6) + "title: *l5\n"
    err = refusal(text)
    assert f"more than {MAX_YAML_ALIASES} aliases" in err.message
    # Lines 1-4: name, vms, VM_A, description; l0 on 5 has no alias; l1..l3 on 6..8 have
    # 27; l4 on line 9 has the 33rd.
    assert err.line == 9


def test_few_aliases_that_expand_hugely_are_refused() -> None:
    """Within the alias count, doubling 2**15 times a long string would still be huge."""
    leaf = '"' + "x" * 100_000 + '"'
    text = f"name: bomb\n{VMS}" + laughs(16, fanout=2, leaf=leaf) + "title: *l15\n"
    assert text.count("*") <= MAX_YAML_ALIASES
    assert "aliases expand it beyond" in refusal(text).message


def test_a_few_aliases_are_fine() -> None:
    text = ("name: shared\nvms:\n  - name: VM_A\n    params: &p {work_ns: 1000}\n"
            "    program: spin\n  - name: VM_B\n    program: spin\n    params: *p\n")
    config = parse(text).config
    assert config["vms"][1]["params"] == {"work_ns": 1000}


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    depth = 50_000
    err = refusal(f"name: deep\n{VMS}title: " + "[" * depth + "]" * depth + "\n")
    assert f"nested deeper than {MAX_NESTING_DEPTH}" in err.message and err.line == 4


def test_deep_json_is_refused_too() -> None:
    depth = 30_000
    text = '{"name": "deep", "vms": [{"name": "A"}], "title": ' + "{\"a\": " * depth + "1" \
        + "}" * depth + "}"
    assert "nested deeper" in refusal(text).message


@pytest.mark.parametrize("digits", [5_000, 4_000, MAX_INTEGER_DIGITS + 1])
def test_huge_integers_are_refused_by_digit_count(digits: int) -> None:
    err = refusal(f"name: big\n{VMS}seed: {'9' * digits}\n")
    assert f"an integer of {digits} digits" in err.message and err.line == 4


def test_an_integer_of_exactly_the_maximum_digit_count_is_read() -> None:
    """At MAX_INTEGER_DIGITS the number is parsed and judged by its field's range (a
    seed that large is above MAX_SEED), not refused for its length."""
    err = refusal(f"name: big\n{VMS}seed: {'9' * MAX_INTEGER_DIGITS}\n")
    assert (err.path, err.line) == ("seed", 4)
    assert "digits" not in err.message and f"maximum of {MAX_SEED}" in err.message


@pytest.mark.parametrize("literal", ["0x" + "f" * 4_000, "0b" + "1" * 50, "0" + "7" * 45,
                                     "-0x" + "F" * 41])
def test_huge_integers_in_other_bases_are_refused(literal: str) -> None:
    """0x fff... has no decimal digit to count, and its value is too large to print."""
    err = refusal(f"name: big\n{VMS}seed: {literal}\n")
    assert "digits (at most" in err.message and err.line == 4


def test_seed_beyond_63_bits_is_refused() -> None:
    err = refusal(f"name: big\n{VMS}seed: {MAX_SEED + 1}\n")
    assert err.path == "seed" and err.line == 4
    assert parse(f"name: big\n{VMS}seed: {MAX_SEED}\n").config["seed"] == MAX_SEED


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", ".NaN"])
def test_speed_must_be_a_finite_number(value: str) -> None:
    err = refusal(f"name: s\nspeed: {value}\n{VMS}")
    assert err.path == "speed" and err.line == 2


def test_a_float_where_an_integer_goes_is_refused() -> None:
    err = refusal("name: f\nvms:\n  - name: VM_A\n    vcpus: 2.0\n")
    assert err.path == "vms[0].vcpus" and err.line == 4


def test_a_long_value_is_not_quoted_whole() -> None:
    items = ", ".join(str(n) for n in range(20_000))
    err = refusal(f"name: long\n{VMS}title: [{items}]\n")
    assert err.path == "title" and err.line == 4
    assert "characters)" in err.message  # says how long it was instead


def test_a_long_field_name_is_not_quoted_whole() -> None:
    err = refusal(f"name: long\n{VMS}{'k' * 1000}: 1\n")
    assert err.line == 1 and "kkkk" in err.message


def test_spin_without_work_is_refused_by_validation() -> None:
    """A spin chunk of 0 ns never lets time pass: the run could never finish."""
    text = "name: spin0\nvms:\n  - name: VM_A\n    program: spin\n    params: {work_ns: 0}\n"
    err = refusal(text)
    assert err.path == "vms[0].params.work_ns" and err.line == 5
    text = ("name: spin0\nvms:\n  - name: HLOS\n    program: vm-manager\n"
            "images:\n  - name: G\n    program: spin\n    params: {work_ns: 0}\n")
    assert refusal(text).path == "images[0].params.work_ns"
    ok = "name: idle0\nvms:\n  - name: VM_A\n    program: exit-after\n    params: {work_ns: 0}\n"
    parse(ok)  # other programs may do no work: they wait for something

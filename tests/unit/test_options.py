"""noxlib's options after ``--``: group names, then noxlib's options, then pytest's arguments;
errors that name the value, the flag and the choices; the help that lists them all."""

from __future__ import annotations

from pathlib import Path

import pytest

from noxlib.config import Config, Group
from noxlib.errors import UsageError
from noxlib.options import ENGINES, OPTIONS, Options, help_text, parse_options
from noxlib.plan import split_posargs


@pytest.fixture
def config(tmp_path: Path) -> Config:
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "tests" / "unit" / "test_x.py").write_text("")
    return Config(
        root=tmp_path,
        groups={
            "unit": Group("unit", ("tests/unit",), "Fast unit tests"),
            "slow": Group("slow", ("tests/slow",), "Slow tests"),
        },
        default_groups=("unit",),
    )


def test_groups_then_options_then_pytest_arguments(config: Config) -> None:
    posargs = ["unit", "slow", "--engine", "xdist", "--coverage", "-k", "login", "-x"]
    groups, options, rest = split_posargs(posargs, config)
    assert [g.name for g in groups] == ["unit", "slow"]
    assert options == Options(engine="xdist", coverage=True, given=("--engine", "--coverage"))
    assert rest == ("-k", "login", "-x")


def test_a_group_after_the_options_is_refused(config: Config) -> None:
    """Groups come first: after an option, a group name would reach pytest as a path."""
    with pytest.raises(UsageError, match="'unit' \\(after --\\) is neither a test group"):
        split_posargs(["--coverage", "unit"], config)


def test_a_path_after_the_options_goes_to_pytest(config: Config) -> None:
    groups, options, rest = split_posargs(["--no-coverage", "tests/unit/test_x.py"], config)
    assert groups == ()
    assert options.coverage is False
    assert rest == ("tests/unit/test_x.py",)


@pytest.mark.parametrize("words", [["--engine", "xdist"], ["--engine=xdist"]])
def test_engine_takes_its_value_as_next_word_or_after_equals(words: list[str]) -> None:
    options, rest = parse_options([*words, "-x"])
    assert options.engine == "xdist"
    assert options.given == ("--engine",)
    assert rest == ("-x",)


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_is_accepted(engine: str) -> None:
    assert parse_options(["--engine", engine])[0].engine == engine


@pytest.mark.parametrize(
    ("words", "shown"),
    [
        (["--engine", "fast"], "'fast'"),
        (["--engine=fast"], "'fast'"),
        (["--engine="], "''"),
        (["--engine", "XDIST"], "'XDIST'"),
        (["--engine", "--coverage"], "'--coverage'"),
    ],
)
def test_bad_engine_names_value_flag_and_choices(words: list[str], shown: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_options(words)
    message = str(info.value)
    assert f"Invalid value {shown} for --engine (after --)" in message
    assert "expected one of auto, shards, xdist" in message
    assert "--noxlib-help lists every option" in message


def test_engine_without_a_value_is_refused() -> None:
    with pytest.raises(UsageError, match=r"--engine \(after --\) needs a value: one of auto"):
        parse_options(["--engine"])


def test_coverage_switches() -> None:
    assert parse_options([])[0].coverage is None  # not given: the session decides
    assert parse_options(["--coverage"])[0].coverage is True
    assert parse_options(["--no-coverage"])[0].coverage is False


@pytest.mark.parametrize(
    "words", [["--coverage", "--no-coverage"], ["--no-coverage", "--coverage"]]
)
def test_coverage_and_no_coverage_conflict(words: list[str]) -> None:
    with pytest.raises(UsageError) as info:
        parse_options(words)
    assert str(info.value) == (
        "--coverage and --no-coverage (after --) contradict each other; use one."
    )


def test_a_switch_takes_no_value() -> None:
    with pytest.raises(UsageError) as info:
        parse_options(["--coverage=yes"])
    assert str(info.value) == "--coverage (after --) takes no value, but was given 'yes'."


@pytest.mark.parametrize(
    "words",
    [
        ["-k", "login", "--engine", "xdist"],
        ["--cov", "--coverage"],  # a pytest option that only starts like one of noxlib's
        ["tests/unit", "--no-coverage"],
        ["--", "--coverage"],
    ],
)
def test_the_first_word_that_is_not_a_noxlib_option_stops_parsing(words: list[str]) -> None:
    """Everything from there on is pytest's, even words that look like noxlib's options."""
    options, rest = parse_options(words)
    assert options == Options()
    assert rest == tuple(words)


def test_options_after_a_pytest_option_are_not_read() -> None:
    options, rest = parse_options(["--coverage", "-x", "--engine", "fast"])
    assert options.coverage is True
    assert options.engine is None  # "fast" would be an error if it were read
    assert rest == ("-x", "--engine", "fast")


def test_noxlib_help() -> None:
    options, rest = parse_options(["--noxlib-help"])
    assert options.help is True
    assert rest == ()
    assert parse_options([])[0].help is False


def test_help_lists_every_option_with_its_help() -> None:
    text = help_text()
    lines = text.splitlines()
    assert lines[0].startswith("noxlib options (after --")
    assert len(lines) == 1 + len(OPTIONS)
    flags = [line.split()[0] for line in lines[1:]]
    assert flags == [
        "--engine",
        "--batch",
        "--resume",
        "--affected",
        "--explain",
        "--coverage",
        "--no-coverage",
        "--triage",
        "--no-triage",
        "--store-durations",
        "--noxlib-help",
    ]
    columns = set()
    for option, line in zip(OPTIONS, lines[1:], strict=True):
        assert line.endswith(option.help)
        columns.add(line.index(option.help))
    assert len(columns) == 1  # the helps start in one column
    assert "  --engine NAME  " in text


def test_triage_and_no_triage() -> None:
    options, rest = parse_options(["--no-triage", "-k", "x"])
    assert options.triage is False
    assert rest == ("-k", "x")
    assert parse_options(["--triage"])[0].triage is True
    assert parse_options([])[0].triage is None
    with pytest.raises(UsageError, match="contradict"):
        parse_options(["--triage", "--no-triage"])

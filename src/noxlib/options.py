"""noxlib's own options after ``--``: one table, one grammar, one error style.

After ``--`` come group names, then noxlib's options, then everything else, which goes to
pytest verbatim: ``nox -s tests -- unit --engine xdist -k login``. ``--noxlib-help`` lists them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from noxlib.errors import UsageError

ENGINES = ("auto", "shards", "xdist")


@dataclass(frozen=True)
class Option:
    """One noxlib option: its flag, the values it takes (empty for a switch), its help."""

    flag: str
    help: str
    choices: tuple[str, ...] = ()


OPTIONS = (
    Option(
        "--engine",
        "how a parallel run runs its tests for this run: shards (N pytest processes, each "
        "over its share), xdist (pytest-xdist), or auto (shards, or serial when the recorded "
        "durations say parallel cannot win); default: the engine setting",
        ENGINES,
    ),
    Option(
        "--batch",
        "run every selected group in batches for this run: file (each test file its own "
        "pytest process) or group (each group one)",
        ("file", "group"),
    ),
    Option(
        "--resume",
        "rerun only the batches that did not pass in the last run of this session and groups",
    ),
    Option(
        "--affected",
        "run only the tests that can see what changed since the map's commit (git diff, "
        "uncommitted and untracked files); every test when the map cannot tell. tests and "
        "tests-parallel only: ci always runs everything",
    ),
    Option(
        "--explain",
        "with --affected: print, for each test it runs, the change that brought it, and why "
        "leaving the others out is safe",
    ),
    Option("--coverage", "measure coverage in this run, whatever the session"),
    Option("--no-coverage", "do not measure coverage in this run, not even in ci"),
    Option(
        "--triage",
        "rerun failed tests serially to classify them in this run, also in a session that does "
        "not by default (triage-sessions)",
    ),
    Option("--no-triage", "do not rerun failed tests serially to classify them in this run"),
    Option(
        "--store-durations",
        "write this run's durations into the durations file even when git tracks it (to "
        "commit them); without it a tracked file is left alone and .noxlib/ keeps them",
    ),
    Option("--noxlib-help", "list these options and exit"),
)
_BY_FLAG = {option.flag: option for option in OPTIONS}


@dataclass(frozen=True)
class Options:
    """The noxlib options of one run; None means "not given, use the settings"."""

    engine: str | None = None
    batch: str | None = None
    resume: bool = False
    coverage: bool | None = None
    help: bool = False
    given: tuple[str, ...] = field(default=())
    triage: bool | None = None  # --triage / --no-triage; None: the session's default
    affected: bool = False
    explain: bool = False
    store_durations: bool = False


def parse_options(words: Sequence[str]) -> tuple[Options, tuple[str, ...]]:
    """Read noxlib's options from the start of ``words``; return them and the rest (pytest's).

    Parsing stops at the first word that is not one of noxlib's options, so pytest's own
    options and arguments pass through untouched.
    """
    values: dict[str, str | None] = {}
    index = 0
    while index < len(words):
        flag, eq, inline = words[index].partition("=")
        option = _BY_FLAG.get(flag)
        if option is None:
            break
        index += 1
        value: str | None = None
        if option.choices:
            if eq:
                value = inline
            elif index < len(words):
                value, index = words[index], index + 1
            if value is None:
                raise UsageError(
                    f"{flag} (after --) needs a value: one of {', '.join(option.choices)}."
                )
            if value not in option.choices:
                raise UsageError(
                    f"Invalid value {value!r} for {flag} (after --): expected one of "
                    f"{', '.join(option.choices)}, e.g. nox -s tests-parallel -- {flag} "
                    f"{option.choices[-1]}. nox -s tests -- --noxlib-help lists every option."
                )
        elif eq:
            raise UsageError(f"{flag} (after --) takes no value, but was given {inline!r}.")
        values[flag] = value
    coverage = None
    if "--coverage" in values and "--no-coverage" in values:
        raise UsageError("--coverage and --no-coverage (after --) contradict each other; use one.")
    if "--coverage" in values or "--no-coverage" in values:
        coverage = "--coverage" in values
    if "--triage" in values and "--no-triage" in values:
        raise UsageError("--triage and --no-triage (after --) contradict each other; use one.")
    triage = ("--triage" in values) if ("--triage" in values or "--no-triage" in values) else None
    options = Options(
        engine=values.get("--engine"),
        batch=values.get("--batch"),
        resume="--resume" in values,
        coverage=coverage,
        help="--noxlib-help" in values,
        given=tuple(values),
        triage=triage,
        affected="--affected" in values,
        explain="--explain" in values,
        store_durations="--store-durations" in values,
    )
    if options.explain and not options.affected:
        raise UsageError(
            "--explain (after --) explains what --affected selects, and --affected was not "
            "given: use nox -s tests -- --affected --explain."
        )
    return options, tuple(words[index:])


def help_text() -> str:
    """The list of noxlib's options, for ``--noxlib-help``."""
    width = max(len(o.flag) + (len(" NAME") if o.choices else 0) for o in OPTIONS)
    lines = ["noxlib options (after --, after any group names, before pytest's arguments):"]
    for option in OPTIONS:
        usage = option.flag + (" NAME" if option.choices else "")
        lines.append(f"  {usage.ljust(width)}  {option.help}")
    return "\n".join(lines)

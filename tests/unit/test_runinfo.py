"""What a run says about itself (run.json), and the set of CI shards ``combine`` accepts: every
refusal names the shard, what differs and the fix; the checkout's folder never counts."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from noxlib.errors import UsageError
from noxlib.runinfo import PartRow, RunInfo, check_shard_set, read_run_info, write_run_info

BOOKS = {"balanced": True, "tests": 3, "not_run": [], "conflicts": [], "unselected": []}


def info(shard: str | None, plan: str = "p1", **changes: object) -> RunInfo:
    base = RunInfo(
        session="ci",
        groups=("unit",),
        shard=shard,
        plan=plan,
        root="/src",
        status="passed",
        wall_seconds=12.5,
        parts=(PartRow("shard-1", "passed", 3, 1.0, 1.2),),
        python="3.11",
        noxlib="0.1.0",
        code="c0ffee",
        collected="d1g35t",
        run_id="run-1",
        books=dict(BOOKS),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def shard_set(tmp_path: Path, *shards: tuple[str, str | None, str]) -> list[tuple[Path, RunInfo]]:
    """(reports folder, its run.json) for each (folder name, shard, plan), in order."""
    return [(tmp_path / name, info(shard, plan)) for name, shard, plan in shards]


def refusal(infos: list[tuple[Path, RunInfo]]) -> str:
    with pytest.raises(UsageError) as error:
        check_shard_set(infos)
    return str(error.value)


# --- which shards ---------------------------------------------------------------------------------


def test_a_complete_set_of_shards_passes(tmp_path: Path) -> None:
    infos = shard_set(tmp_path, ("r3", "3/3", "p"), ("r1", "1/3", "p"), ("r2", "2/3", "p"))
    assert check_shard_set(infos) == 3
    assert check_shard_set(shard_set(tmp_path, ("only", "1/1", "p"))) == 1


def test_a_missing_shard_is_named(tmp_path: Path) -> None:
    message = refusal(shard_set(tmp_path, ("r1", "1/4", "p"), ("r3", "3/4", "p")))
    assert "Shard(s) 2/4, 4/4 missing: combine got 2 of 4 reports folders" in message


def test_a_shard_given_twice_names_both_folders(tmp_path: Path) -> None:
    infos = shard_set(tmp_path, ("job-a", "2/2", "p"), ("job-c", "1/2", "p"), ("job-b", "2/2", "p"))
    message = refusal(infos)
    assert f"Shard 2/2 is given twice: {tmp_path / 'job-a'}, {tmp_path / 'job-b'}." in message


def test_one_folder_given_twice_is_not_two_shards(tmp_path: Path) -> None:
    """``combine -- r1 r1`` names shard 1/2 twice; it does not pass for a complete set."""
    infos = shard_set(tmp_path, ("r1", "1/2", "p"), ("r1", "1/2", "p"))
    assert "Shard 1/2 is given twice" in refusal(infos)


def test_shards_of_different_plans_are_refused(tmp_path: Path) -> None:
    message = refusal(shard_set(tmp_path, ("r1", "1/2", "aaaa"), ("r2", "2/2", "bbbb")))
    assert "The shards do not belong to one run: their plan differs" in message
    for shard, plan in (("1/2", "aaaa"), ("2/2", "bbbb")):  # each shard with its plan
        assert re.search(f"{shard}\\b[^,]*\\b{plan}\\b", message), message


def test_shards_of_matrices_of_different_sizes_are_refused(tmp_path: Path) -> None:
    message = refusal(shard_set(tmp_path, ("r1", "1/2", "p"), ("r2", "2/3", "p")))
    assert "matrices of different sizes: [2, 3]" in message


def test_an_unsharded_folder_is_refused(tmp_path: Path) -> None:
    message = refusal(shard_set(tmp_path, ("r1", "1/2", "p"), ("local", None, "p")))
    assert f"Not the reports of a sharded run: {tmp_path / 'local'}." in message
    assert "combine needs the reports folders" in refusal([])


# --- shards that were not run alike ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "other", "label", "fix"),
    [
        ("session", "tests", "session", "run every shard with the same nox -s SESSION"),
        ("python", "3.12", "Python", "run every shard on one Python version"),
        ("groups", ("unit", "slow"), "group list", "give every shard the same groups after --"),
        ("noxlib", "0.2.0", "noxlib version", "install one noxlib version on every shard"),
        ("code", "deadbeef", "code (commit and uncommitted files)", "from one commit, clean"),
        ("collected", "0th3r", "collected set", "is collection random or machine-specific?"),
        ("plan", "p2", "plan", "must restore the durations the first attempt used"),
    ],
)
def test_a_shard_run_otherwise_is_refused_naming_it_the_field_and_the_fix(
    tmp_path: Path, name: str, other: object, label: str, fix: str
) -> None:
    first, second = info("1/2"), info("2/2", **{name: other})
    message = refusal([(tmp_path / "r1", first), (tmp_path / "r2", second)])
    assert message.startswith(f"The shards do not belong to one run: their {label} differs (")
    for shard, folder, run in (("1/2", "r1", first), ("2/2", "r2", second)):
        assert f"shard {shard} ({tmp_path / folder}): {getattr(run, name)!r}" in message
    assert "To fix: " in message
    assert fix in message.partition("To fix: ")[2]


def test_shards_that_collected_only_their_own_files_are_not_compared(tmp_path: Path) -> None:
    """Shards split by file record no collected digest: an empty one matches any."""
    infos = [(tmp_path / "r1", info("1/2", collected="")), (tmp_path / "r2", info("2/2"))]
    assert check_shard_set(infos) == 2


def test_checkouts_at_different_folders_belong_to_one_run(tmp_path: Path) -> None:
    """CI runners check out where they like: the root differs, the run is one."""
    roots = ("/home/runner/work/proj/proj", "/builds/group/proj", "C:\\a\\proj\\proj")
    infos = [
        (tmp_path / f"r{k}", info(f"{k}/3", root=root)) for k, root in enumerate(roots, start=1)
    ]
    assert len({run.root for _, run in infos}) == 3
    assert check_shard_set(infos) == 3


def test_a_shard_that_ran_no_test_is_refused_with_its_reason(tmp_path: Path) -> None:
    empty = {**BOOKS, "tests": 0}
    broken = info("2/2", books=empty, status="error", reason="pytest exited with code 4")
    message = refusal([(tmp_path / "r1", info("1/2")), (tmp_path / "r2", broken)])
    assert message == (
        f"Shard 2/2 ({tmp_path / 'r2'}) ran no test of its share: pytest exited with code 4. Its "
        "job's log says why; rerun that job, then combine again."
    )
    # Without a reason, its status says why.
    message = refusal([(tmp_path / "r1", info("1/2")), (tmp_path / "r2", info("2/2", books=empty))])
    assert f"Shard 2/2 ({tmp_path / 'r2'}) ran no test of its share: passed." in message


def test_a_shard_that_never_chose_its_tests_is_refused_in_a_small_matrix(tmp_path: Path) -> None:
    """Fewer tests than shards may leave a shard without any; one that never chose is refused
    all the same."""
    one = {**BOOKS, "tests": 1}
    unselected = {**BOOKS, "tests": 0, "unselected": [["shard-1", "pytest ended early"]]}
    small = [(tmp_path / "r1", info("1/3", books=one)), (tmp_path / "r2", info("2/3", books=one))]
    small.append((tmp_path / "r3", info("3/3", books={**BOOKS, "tests": 0})))
    assert check_shard_set(small) == 3
    small[2] = (tmp_path / "r3", info("3/3", books=unselected))
    assert f"Shard 3/3 ({tmp_path / 'r3'}) ran no test of its share" in refusal(small)


# --- run.json -------------------------------------------------------------------------------------


def test_run_info_round_trips_and_a_folder_without_one_is_named(tmp_path: Path) -> None:
    write_run_info(tmp_path / "r1", info("1/2"))
    assert read_run_info(tmp_path / "r1") == info("1/2")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=f"{tmp_path / 'empty'} holds no run.json"):
        read_run_info(tmp_path / "empty")
    (tmp_path / "r1" / "run.json").write_text('{"session": "ci"}')
    with pytest.raises(UsageError, match="is not a noxlib run description"):
        read_run_info(tmp_path / "r1")


def test_a_run_json_of_an_older_noxlib_reads_with_defaults(tmp_path: Path) -> None:
    """Fields a later noxlib added are filled in; fields it does not know are left out."""
    old = asdict(info("1/2"))
    for name in ("python", "noxlib", "code", "collected", "run_id", "reason", "books"):
        del old[name]
    old["from_the_future"] = 1
    (tmp_path / "run.json").write_text(json.dumps(old))
    found = read_run_info(tmp_path)
    defaults = {"python": "", "noxlib": "", "code": "", "collected": "", "run_id": "", "books": {}}
    assert found == replace(info("1/2"), **defaults)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["missing", "a-file"])
def test_a_folder_that_does_not_exist_is_named_as_such(tmp_path: Path, name: str) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(UsageError) as error:
        read_run_info(tmp_path / name)
    assert str(error.value).startswith(f"{tmp_path / name} (given to combine) does not exist")
    assert "holds no run.json" not in str(error.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("shard", "x"),
        ("shard", "3/2"),
        ("shard", "0/2"),
        ("parts", 5),
        ("parts", "not a list"),
        ("parts", [1]),
        ("parts", [{"name": "shard-1"}]),
        ("groups", None),
        ("wall_seconds", "twelve"),
        ("shard", 2),
        ("shard", "²/3"),
    ],
)
def test_a_malformed_run_json_is_a_usage_error(tmp_path: Path, name: str, value: object) -> None:
    data = asdict(info("1/2"))
    data[name] = value
    (tmp_path / "run.json").write_text(json.dumps(data))
    with pytest.raises(UsageError) as error:
        read_run_info(tmp_path)
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'run.json'} is not a noxlib run description (")
    assert "Download that shard's reports folder again, or rerun its job." in message


@pytest.mark.parametrize("text", ["[1, 2]", '{"session": ', ""])
def test_a_run_json_that_is_no_object_is_a_usage_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "run.json").write_text(text)
    with pytest.raises(UsageError, match="is not a noxlib run description"):
        read_run_info(tmp_path)


@pytest.mark.parametrize("books", ["balanced", {"tests": "many"}])
def test_malformed_books_in_run_json_are_a_usage_error(tmp_path: Path, books: object) -> None:
    for k in (1, 2):
        data = asdict(info(f"{k}/2"))
        data["books"] = books if k == 2 else BOOKS
        (tmp_path / f"r{k}").mkdir()
        (tmp_path / f"r{k}" / "run.json").write_text(json.dumps(data))
    with pytest.raises(UsageError, match="r2"):
        check_shard_set([(tmp_path / f"r{k}", read_run_info(tmp_path / f"r{k}")) for k in (1, 2)])

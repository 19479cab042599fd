"""One JUnit XML for a run, from the JUnit files of its parts and its books.

pytest writes a JUnit file per process; a run of several processes (shards, relaunches after a
crash, CI shards) needs one, and it must say what the books say: one testcase per test, with
the test's final outcome. Where a part's file holds the testcase with that outcome it is kept
as pytest wrote it; otherwise (a process died before writing, a conflict, a test that never
ran) the testcase is made from the result.
"""

from __future__ import annotations

import contextlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from noxlib.files import write_atomic
from noxlib.outcomes import FAILING
from noxlib.triage import Failure

Result = Mapping[str, object]
# The JUnit element of each failing or skipped outcome; the rest pass.
_TAG = {
    "failed": "failure",
    "timeout": "failure",
    "error": "error",
    "crashed": "error",
    "not-run": "error",
    "skipped": "skipped",
    "xfailed": "skipped",
}
_TAGS = ("failure", "error", "skipped")


def junit_address(nodeid: str) -> tuple[str, str]:
    """(classname, name) that pytest's JUnit XML gives the test ``nodeid``: the parameters
    (which may hold ``::``, as in ``[::1]``) are set aside before the id is split."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


# What XML 1.0 cannot hold (terminal colour codes in an assertion message, say).
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """``text`` with every character XML cannot hold written as ``#x1B``, as pytest does."""
    return _NOT_XML.sub(lambda m: f"#x{ord(m.group()):02X}", text)


def _tag_of(case: ET.Element) -> str | None:
    return next((tag for tag in _TAGS if case.find(tag) is not None), None)


def case_for(result: Result) -> ET.Element:
    """A testcase made from a result (no JUnit file holds one with its outcome)."""
    classname, name = junit_address(str(result["nodeid"]))
    seconds = float(str(result.get("duration", 0) or 0))
    case = ET.Element("testcase", classname=classname, name=name, time=f"{seconds:.3f}")
    outcome = str(result.get("outcome"))
    tag = _TAG.get(outcome)
    text = xml_safe(str(result.get("longrepr", "")))
    if tag == "skipped":
        ET.SubElement(case, "skipped", message=outcome)
    elif tag is not None:
        child = ET.SubElement(case, tag, message=f"{outcome}: {text[:200]}", type=outcome)
        child.text = text
    return case


def merge_junit(files: Iterable[Path], results: Iterable[Result], out: Path) -> int:
    """Write one JUnit XML at ``out``: one testcase per result of the run's books (``results``),
    taken from ``files`` where one of them holds it with the same outcome. Returns the number
    of testcases."""
    written: dict[tuple[str, str], list[ET.Element]] = {}
    for path in files:
        with contextlib.suppress(FileNotFoundError, ET.ParseError):
            for case in ET.parse(path).getroot().iter("testcase"):
                address = (case.get("classname", ""), case.get("name", ""))
                written.setdefault(address, []).append(case)
    cases = []
    for result in results:
        wanted = _TAG.get(str(result.get("outcome")))
        found = written.get(junit_address(str(result["nodeid"])), [])
        same = next((case for case in found if _tag_of(case) == wanted), None)
        cases.append(same if same is not None else case_for(result))
    write_atomic(out, _document(cases))
    return len(cases)


def _document(cases: list[ET.Element]) -> str:
    suite = ET.Element("testsuite", name="pytest", tests=str(len(cases)))
    counts = dict.fromkeys(_TAGS, 0)
    total = 0.0
    for case in cases:
        suite.append(case)
        total += float(case.get("time", "0") or 0)
        tag = _tag_of(case)
        if tag is not None:
            counts[tag] += 1
    suite.set("failures", str(counts["failure"]))
    suite.set("errors", str(counts["error"]))
    suite.set("skipped", str(counts["skipped"]))
    suite.set("time", f"{total:.3f}")
    root = ET.Element("testsuites")
    root.append(suite)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


# The JUnit element of a failing rerun, as Surefire writes reruns (and Jenkins reads them).
_RERUN_TAG = {"failed": "rerunFailure", "timeout": "rerunFailure"}


def add_reruns(path: Path, failures: Sequence[Failure]) -> None:
    """Add to the testcases of ``path`` what triage found: a ``rerunFailure`` (or
    ``rerunError``) per failing rerun, and the verdict in the testcase's ``system-out``. The
    testcase keeps its own ``failure``: the run's outcome of the test is the truth."""
    try:
        tree = ET.parse(path)
    except (FileNotFoundError, ET.ParseError):
        return
    by_address = {junit_address(f.nodeid): f for f in failures}
    for case in tree.getroot().iter("testcase"):
        failure = by_address.get((case.get("classname", ""), case.get("name", "")))
        if failure is None:
            continue
        reruns = [("alone", o) for o in failure.evidence.alone]
        reruns += [("in its company", o) for o in failure.evidence.company]
        for index, (where, outcome) in enumerate(reruns, 1):
            if outcome in FAILING:
                tag = _RERUN_TAG.get(outcome, "rerunError")
                message = f"rerun {index} ({where}): {outcome}"
                ET.SubElement(case, tag, message=message, type=outcome)
        note = ET.SubElement(case, "system-out")
        note.text = xml_safe(f"noxlib triage: {failure.verdict_line()}")
    write_atomic(path, ET.tostring(tree.getroot(), encoding="unicode", xml_declaration=True))

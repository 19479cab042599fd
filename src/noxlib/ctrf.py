"""``reports/ctrf.json``: the run in the Common Test Report Format (https://ctrf.io), which
CI dashboards and report actions read.

One test per result of the run's books, with its true outcome; a failure carries its triage
(``flaky`` for a failure no rerun confirmed, ``retries`` for the reruns it got) and, in
``extra``, the verdict, polluter and quarantine. The ``runId`` (and the environment's
``buildId``) is the CI provider's id of the run, so that the reports of the shards of one CI
run, and their combined report, carry the same one. Pure but for
`write_ctrf`.
"""

from __future__ import annotations

import datetime
import json
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from noxlib._version import __version__
from noxlib.files import write_atomic
from noxlib.reports import RunSummary
from noxlib.triage import TOLERABLE, Failure

CTRF_FILE = "ctrf.json"
SPEC_VERSION = "0.0.0"
# CTRF's five statuses, from noxlib's outcomes.
STATUS = {
    "passed": "passed",
    "xpassed": "passed",
    "failed": "failed",
    "error": "failed",
    "timeout": "failed",
    "crashed": "failed",
    "skipped": "skipped",
    "xfailed": "skipped",
    "not-run": "other",
}
STATUSES = ("passed", "failed", "skipped", "pending", "other")
# The variables by which CI providers name one run of a pipeline (every shard job sees them).
RUN_ID_VARIABLES = (
    ("GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT"),
    ("CI_PIPELINE_ID", ""),
    ("BUILDKITE_BUILD_ID", "BUILDKITE_RETRY_COUNT"),
    ("CIRCLE_WORKFLOW_ID", ""),
    ("BUILD_BUILDID", "SYSTEM_JOBATTEMPT"),
)


def run_id(env: Mapping[str, str], fallback: str) -> str:
    """The CI run this report belongs to: the provider's run id (and attempt), else
    ``fallback`` (noxlib's own run id, for a run outside CI)."""
    for name, attempt in RUN_ID_VARIABLES:
        if env.get(name):
            return f"{env[name]}-{env[attempt]}" if attempt and env.get(attempt) else env[name]
    return fallback


def _test(nodeid: str, outcome: str, seconds: float, failure: Failure | None) -> dict[str, object]:
    test: dict[str, object] = {
        "name": nodeid,
        "status": STATUS.get(outcome, "other"),
        "duration": round(seconds * 1000),
        "rawStatus": outcome,
        "filePath": nodeid.split("::", 1)[0],
    }
    if failure is None:
        return test
    reruns = [*failure.evidence.alone, *failure.evidence.company]
    attempts = [{"attempt": 1, "status": test["status"], "rawStatus": outcome}]
    attempts += [
        {"attempt": n, "status": STATUS.get(o, "other"), "extra": {"rerun": o}}
        for n, o in enumerate(reruns, 2)
    ]
    for attempt in attempts[:1]:
        attempt["extra"] = {"rawStatus": attempt.pop("rawStatus")}
    test.update(
        message=failure.cause.key,
        flaky=failure.triage in TOLERABLE,
        retries=len(reruns),
        retryAttempts=attempts,
    )
    extra: dict[str, object] = {"triage": failure.triage, "verdict": failure.verdict_line()}
    if failure.polluter:
        extra["polluter"] = list(failure.polluter)
    if failure.quarantined:
        extra["quarantined"] = failure.quarantined
    test["extra"] = extra
    return test


def report(
    summary: RunSummary, env: Mapping[str, str], now: float | None = None
) -> dict[str, object]:
    """The CTRF document of ``summary``."""
    stop = now if now is not None else time.time()
    start = stop - summary.wall_seconds
    failures = {f.nodeid: f for f in summary.failures}
    tests = [
        _test(r.nodeid, r.outcome, r.duration, failures.get(r.nodeid)) for r in summary.results
    ]
    counted = {status: sum(t["status"] == status for t in tests) for status in STATUSES}
    ci_run = run_id(env, summary.run_id)
    return {
        "reportFormat": "CTRF",
        "specVersion": SPEC_VERSION,
        "reportId": str(uuid.uuid4()),
        "runId": ci_run,
        "timestamp": datetime.datetime.fromtimestamp(stop, datetime.timezone.utc).isoformat(),
        "generatedBy": "noxlib",
        "results": {
            "tool": {"name": "noxlib", "version": __version__},
            "summary": {
                "tests": len(tests),
                **counted,
                "flaky": sum(t.get("flaky") is True for t in tests),
                "start": round(start * 1000),
                "stop": round(stop * 1000),
            },
            "tests": tests,
            "environment": {"buildId": ci_run, "testEnvironment": summary.session},
            "extra": {
                "noxlibRunId": summary.run_id,
                "status": summary.status,
                "books": summary.books,
            },
        },
    }


def write_ctrf(reports_dir: Path, summary: RunSummary, env: Mapping[str, str]) -> Path:
    path = reports_dir / CTRF_FILE
    # Not indented: json's indenting encoder is pure Python, 4 s for a suite of 200,000 tests.
    write_atomic(path, json.dumps(report(summary, env)) + "\n")
    return path

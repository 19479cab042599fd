"""Reaping through real nox runs on a small project in a tmp dir.

The project's one test starts servers that escape pytest (setsid, a double-fork daemon,
``sh -c 'nohup ... &'``, one that ignores SIGTERM, one under ``env -i`` recorded with
``noxlib.plugin.record_process``), writes their pids to a file, and then does what REAP_ACTION
says: SIGKILL pytest, SIGKILL the xdist controller, or hang so that the test can SIGKILL nox.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import alive, nox_env, run_nox, wait_gone

Facts = dict[str, Any]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")

PYPROJECT = """
[tool.noxlib]
install = []
default-groups = ["all"]
reap-grace = 1.0

[tool.noxlib.coverage]
enabled = false

[tool.noxlib.groups.all]
paths = ["tests"]
"""

LEAVER = """
import json, os, signal, subprocess, sys, time
from pathlib import Path

from noxlib.plugin import record_process

SLEEP = ["sleep", "120"]
PIPE = subprocess.PIPE
DAEMON = (
    "import os\\n"
    "if os.fork(): os._exit(0)\\n"
    "os.setsid()\\n"
    "if os.fork(): os._exit(0)\\n"
    "os.write(1, str(os.getpid()).encode()); os.close(1)\\n"
    "os.execvp('sleep', ['sleep', '120'])\\n"
)
STUBBORN = (
    "import signal, time\\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
    "print('ready', flush=True)\\n"
    "time.sleep(120)\\n"
)


def ticks(pid):
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    return int(stat[stat.rfind(b")") + 2 :].split()[19])


def spawn():
    servers = {"setsid": subprocess.Popen(SLEEP, start_new_session=True).pid}
    out = subprocess.run([sys.executable, "-c", DAEMON], stdout=PIPE, check=True).stdout
    servers["daemon"] = int(out)
    script = "nohup sleep 120 >/dev/null 2>&1 & echo $!"
    servers["nohup"] = int(subprocess.run(["sh", "-c", script], stdout=PIPE, check=True).stdout)
    cmd = [sys.executable, "-c", STUBBORN]
    stubborn = subprocess.Popen(cmd, stdout=PIPE, start_new_session=True)
    stubborn.stdout.readline()
    servers["stubborn"] = stubborn.pid
    envless = subprocess.Popen(["env", "-i", *SLEEP], start_new_session=True)
    record_process(envless.pid, name="envless-sleep", port=4321)
    servers["envless"] = envless.pid
    return servers


def test_leave_servers_behind():
    action = os.environ.get("REAP_ACTION", "pass")
    if action == "pass":
        return
    out = Path(os.environ["REAP_OUT"])
    servers = {kind: [pid, ticks(pid)] for kind, pid in spawn().items()}
    me = [os.getpid(), ticks(os.getpid())]
    facts = {"servers": servers, "pytest": me, "run_id": os.environ["NOXLIB_RUN_ID"]}
    if action == "kill-controller":
        facts["controller"] = os.getppid()
    out.with_suffix(".tmp").write_text(json.dumps(facts))
    out.with_suffix(".tmp").rename(out)
    if action == "kill-pytest":
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "kill-controller":
        os.kill(os.getppid(), signal.SIGKILL)
    time.sleep(120)
"""


@pytest.fixture
def tracked() -> Iterator[list[psutil.Process]]:
    """Processes the test learned of by pid; whatever is left is killed by pid at the end."""
    procs: list[psutil.Process] = []
    yield procs
    for proc in procs:
        if alive(proc):  # psutil refuses a pid reused meanwhile
            proc.kill()
    wait_gone(procs, 10)


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project(PYPROJECT, {"tests/test_leave.py": LEAVER})


def start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return int(stat[stat.rfind(b")") + 2 :].split()[19])


def read_facts(path: Path, tracked: list[psutil.Process], timeout: float = 300) -> Facts:
    """The pids the project's test reported; those still running (same pid and start) are
    tracked for the finalizer. Pids are flattened: ``servers`` maps kind to pid."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, "the project's test never reported its servers"
        time.sleep(0.1)
    facts = json.loads(path.read_text())
    for pid, ticks in [*facts["servers"].values(), facts["pytest"]]:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc = psutil.Process(pid)
            if start_ticks(pid) == ticks:
                tracked.append(proc)
    facts["servers"] = {kind: pid for kind, (pid, _) in facts["servers"].items()}
    facts["pytest"] = facts["pytest"][0]
    return facts  # type: ignore[no-any-return]


def run_processes(run_id: str) -> list[int]:
    """Pids of live processes whose environment carries ``run_id`` exactly."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("NOXLIB_RUN_ID") == run_id and proc.status() != "zombie":
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


@pytest.mark.parametrize(
    "mode",
    [("tests", "kill-pytest", "1"), ("tests-parallel", "kill-controller", "2")],
    ids=["serial", "parallel"],
)
def test_post_hook_reaps_what_a_sigkilled_pytest_left(
    project: Path, tmp_path: Path, tracked: list[psutil.Process], mode: tuple[str, str, str]
) -> None:
    session, action, workers = mode
    out = tmp_path / "facts.json"
    env = nox_env(REAP_ACTION=action, REAP_OUT=str(out), PYTEST_WORKERS=workers)
    result = run_nox(project, "-s", session, env=env)
    assert result.returncode != 0, result.stdout
    facts = read_facts(out, tracked, timeout=1)
    assert wait_gone(tracked, 10) == [], result.stdout
    assert run_processes(facts["run_id"]) == [], "a worker or server of the run survived"
    for kind, pid in facts["servers"].items():
        how = "killed by SIGKILL after 1 s" if kind == "stubborn" else "ended by SIGTERM"
        assert f"{how}: " in result.stdout
        assert f"(pid {pid}) of run {facts['run_id']}" in result.stdout
    if action == "kill-controller":
        assert f"(pid {facts['pytest']}) of run" in result.stdout  # the orphaned worker


def start_nox(project: Path, out: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "nox", "-s", "tests"],
            cwd=project,
            env=nox_env(REAP_ACTION="hang", REAP_OUT=str(out)),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def test_warden_reaps_the_run_when_nox_is_sigkilled(
    project: Path, tmp_path: Path, tracked: list[psutil.Process]
) -> None:
    out, log = tmp_path / "facts.json", tmp_path / "nox.log"
    nox = start_nox(project, out, log)
    try:
        facts = read_facts(out, tracked)
        children = psutil.Process(nox.pid).children()
        warden = [c for c in children if "noxlib.reaping.warden" in c.cmdline()]
        assert len(warden) == 1
        tracked.extend(warden)
    finally:
        nox.kill()
        nox.wait()
    assert wait_gone(tracked) == [], log.read_text()
    assert run_processes(facts["run_id"]) == []
    text = log.read_text()
    assert f"noxlib warden: the runner of run {facts['run_id']} died" in text
    assert f"killed by SIGKILL after 1 s: python (pid {facts['servers']['stubborn']})" in text


def test_killed_warden_and_nox_are_reaped_by_reap_and_the_next_pre_hook(
    project: Path, tmp_path: Path, tracked: list[psutil.Process]
) -> None:
    def kill_warden_then_nox(out: Path) -> Facts:
        nox = start_nox(project, out, tmp_path / f"{out.stem}.log")
        try:
            facts = read_facts(out, tracked)
            for child in psutil.Process(nox.pid).children():
                if "noxlib.reaping.warden" in child.cmdline():
                    child.kill()
                    assert wait_gone([child]) == []
        finally:
            nox.kill()
            nox.wait()
        time.sleep(0.5)
        assert alive(tracked[-1]), "pytest lives on: nobody watches the run any more"
        return facts

    first = kill_warden_then_nox(tmp_path / "first.json")
    listed = run_nox(project, "-s", "reap", "--", "--dry-run")
    assert listed.returncode == 0, listed.stdout
    assert all(alive(p) for p in tracked), "a dry run ends nothing"
    for pid in [*first["servers"].values(), first["pytest"]]:
        assert "would end: " in listed.stdout
        assert f"(pid {pid}) of run {first['run_id']}" in listed.stdout
    assert f"ours because NOXLIB_RUN_ID={first['run_id']} is in its environment" in listed.stdout
    assert "ours because ledger entry" in listed.stdout  # the env -i one

    nxt = run_nox(project, "-s", "tests", "-r", env=nox_env(REAP_ACTION="pass"))
    assert nxt.returncode == 0, nxt.stdout
    assert wait_gone(tracked, 10) == [], nxt.stdout
    assert "process(es) left by 1 dead run(s)" in nxt.stdout

    second = kill_warden_then_nox(tmp_path / "second.json")
    reaped = run_nox(project, "-s", "reap")
    assert reaped.returncode == 0, reaped.stdout
    assert wait_gone(tracked, 10) == [], reaped.stdout
    assert f"(pid {second['servers']['envless']}) of run {second['run_id']}" in reaped.stdout
    assert not list((project / ".noxlib" / "runs").iterdir())


def test_a_live_run_is_never_reaped_by_another(
    project: Path, tmp_path: Path, tracked: list[psutil.Process]
) -> None:
    out = tmp_path / "facts.json"
    nox = start_nox(project, out, tmp_path / "nox.log")
    try:
        facts = read_facts(out, tracked)
        result = run_nox(project, "-s", "reap")
        assert result.returncode == 0, result.stdout
        assert all(alive(p) for p in tracked), result.stdout
        assert run_processes(facts["run_id"])
    finally:
        os.kill(nox.pid, signal.SIGKILL)
        nox.wait()
    assert wait_gone(tracked) == []


@pytest.mark.parametrize("how", ["sigterm-to-nox", "ctrl-c-to-the-group"])
def test_post_hook_reaps_after_an_interrupted_run(
    project: Path, tmp_path: Path, tracked: list[psutil.Process], how: str
) -> None:
    out, log = tmp_path / "facts.json", tmp_path / "nox.log"
    nox = start_nox(project, out, log)
    try:
        facts = read_facts(out, tracked)
        if how == "sigterm-to-nox":
            nox.send_signal(signal.SIGTERM)  # a cancelled CI job
        else:
            os.killpg(nox.pid, signal.SIGINT)  # Ctrl-C in nox's terminal
        assert nox.wait(timeout=120) != 0
    finally:
        if nox.poll() is None:
            nox.kill()
            nox.wait()
    assert wait_gone(tracked, 10) == [], log.read_text()
    text = log.read_text()
    assert "noxlib warden:" not in text, "the post hook, not the warden, should have reaped"
    for pid in facts["servers"].values():
        assert f"(pid {pid}) of run {facts['run_id']}" in text
    assert f"killed by SIGKILL after 1 s: python (pid {facts['servers']['stubborn']})" in text


STUBBORN_PYPROJECT = PYPROJECT.replace("reap-grace = 1.0", "reap-grace = 5.0")

# A server that ignores Ctrl-C (its own session: the terminal's SIGINT misses it anyway) and
# notes each SIGTERM in a file instead of obeying it, so the test knows when the reap phase's
# grace period has begun.
STUBBORN_TEST = r'''
import json, os, subprocess, sys, time
from pathlib import Path

STUBBORN = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
def note(signum, frame):
    with open(sys.argv[1], "a") as out:
        out.write("SIGTERM\\n")
signal.signal(signal.SIGTERM, note)
print("ready", flush=True)
while True:
    time.sleep(120)
"""


def test_leave_a_stubborn_server():
    out = Path(os.environ["REAP_OUT"])
    cmd = [sys.executable, "-c", STUBBORN, str(out.with_suffix(".term"))]
    stubborn = subprocess.Popen(cmd, stdout=subprocess.PIPE, start_new_session=True)
    stubborn.stdout.readline()
    facts = {"pid": stubborn.pid, "run_id": os.environ["NOXLIB_RUN_ID"],
             "run_dir": os.environ["NOXLIB_RUN_DIR"]}
    out.with_suffix(".tmp").write_text(json.dumps(facts))
    out.with_suffix(".tmp").rename(out)
    time.sleep(120)
'''


def wait_for(path: Path, nox: subprocess.Popen[bytes], log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert nox.poll() is None, f"nox ended before {path.name} appeared:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"{path.name} never appeared:\n{log.read_text()}"
        time.sleep(0.02)


@pytest.mark.parametrize("then", ["second-ctrl-c", "sigkill-to-nox"])
def test_the_reap_phase_is_not_cut_short(
    make_project: Callable[..., Path], tmp_path: Path, tracked: list[psutil.Process], then: str
) -> None:
    """Ctrl-C, then while the reap phase waits out a stubborn server's grace period, a second
    Ctrl-C or SIGKILL to nox: the server is still ended, by the post phases or the warden."""
    project = make_project(STUBBORN_PYPROJECT, {"tests/test_stubborn.py": STUBBORN_TEST})
    out, log = tmp_path / "facts.json", tmp_path / "nox.log"
    with log.open("wb") as sink:
        nox = subprocess.Popen(
            [sys.executable, "-m", "nox", "-s", "tests"],
            cwd=project,
            env=nox_env(REAP_OUT=str(out)),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(out, nox, log)
        facts = json.loads(out.read_text())
        server = psutil.Process(facts["pid"])
        tracked.append(server)
        assert alive(server), log.read_text()
        os.killpg(nox.pid, signal.SIGINT)  # Ctrl-C: pytest stops, the post phases begin
        wait_for(out.with_suffix(".term"), nox, log, timeout=120)  # reap's grace has begun
        if then == "second-ctrl-c":
            os.killpg(nox.pid, signal.SIGINT)
        else:
            nox.kill()
        assert nox.wait(timeout=120) != 0
    finally:
        if nox.poll() is None:
            nox.kill()
            nox.wait()
    assert wait_gone([server], 20) == [], log.read_text()
    text = log.read_text()
    if then == "second-ctrl-c":
        assert f"killed by SIGKILL after 5 s: python (pid {server.pid})" in text
        assert "noxlib: SIGINT came during the post phases, which ran to the end" in text
        assert (project / "reports" / "ci_timings.md").is_file(), "the report phase ran too"
        assert not Path(facts["run_dir"]).exists(), "nothing of the run is left to remember"
    else:
        assert f"noxlib warden: the runner of run {facts['run_id']} died" in text

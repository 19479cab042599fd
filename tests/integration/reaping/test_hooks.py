"""Reaping with real processes and no nox: a small runner script stands in for nox.

The runner opens a run in a tmp state folder, starts its warden and "servers" of the kinds a
test asks for (a plain child, a setsid child, a double-fork daemon, ``sh -c 'nohup ... &'``, one
that ignores SIGTERM, one started with ``env -i`` and recorded in the ledger), writes their pids
to a report and then waits to be killed, or runs the post hook itself. Every process a test
starts is tracked by pid and start time and killed in the fixture's finalizer if still there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from noxlib.reaping.ledger import LEDGER, _append, _entry_record
from tests.conftest import alive, wait_gone

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")

RUNNER = textwrap.dedent(
    r"""
    import json, os, subprocess, sys, time
    from pathlib import Path
    from noxlib import reaping
    from noxlib.reaping import runs

    state, report, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    kinds = [k for k in sys.argv[4].split(",") if k]
    grace = float(os.environ.get("REAP_GRACE", "1"))
    run = runs.start_run(state)
    warden = reaping.Warden.start(run, grace=grace)
    env = {**os.environ, **run.env()}
    SLEEP = ["sleep", "120"]
    PIPE = subprocess.PIPE
    DAEMON = (
        "import os\n"
        "if os.fork(): os._exit(0)\n"
        "os.setsid()\n"
        "if os.fork(): os._exit(0)\n"
        "os.write(1, str(os.getpid()).encode()); os.close(1)\n"
        "os.execvp('sleep', ['sleep', '120'])\n"
    )
    STUBBORN = (
        "import signal, sys, time\n"
        "def note(signum, frame):\n"
        "    with open(sys.argv[1], 'a') as out:\n"
        "        out.write('SIGTERM\\n')\n"
        "signal.signal(signal.SIGTERM, note)\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    time.sleep(120)\n"
    )
    # Each SIGTERM makes a fresh copy of it, until the count given runs out: processes that
    # keep appearing while a sweep works, more of them than its rounds.
    HYDRA = (
        "import os, signal, subprocess, sys, time\n"
        "left, pids = int(sys.argv[1]), sys.argv[2]\n"
        "def respawn(signum, frame):\n"
        "    if left:\n"
        "        argv = [sys.executable, sys.argv[0], str(left - 1), pids]\n"
        "        child = subprocess.Popen(argv, stdout=subprocess.PIPE, start_new_session=True)\n"
        "        child.stdout.readline()\n"
        "    os._exit(0)\n"
        "signal.signal(signal.SIGTERM, respawn)\n"
        "with open(pids, 'a') as out:\n"
        "    out.write(f'{os.getpid()}\\n')\n"
        # On a loaded machine the sweep may SIGKILL the parent (after its grace) before it
        # reads this line: a closed pipe must not end the copy that is to survive.
        "try:\n"
        "    print('ready', flush=True)\n"
        "except BrokenPipeError:\n"
        "    pass\n"
        "while True:\n"
        "    time.sleep(120)\n"
    )

    def spawn(kind):
        if kind == "plain":
            return subprocess.Popen(SLEEP, env=env).pid
        if kind == "setsid":
            return subprocess.Popen(SLEEP, env=env, start_new_session=True).pid
        if kind == "daemon":
            out = subprocess.run([sys.executable, "-c", DAEMON], env=env, stdout=PIPE, check=True)
            return int(out.stdout)
        if kind == "nohup":
            script = "nohup sleep 120 >/dev/null 2>&1 & echo $!"
            out = subprocess.run(["sh", "-c", script], env=env, stdout=PIPE, check=True)
            return int(out.stdout)
        if kind == "stubborn":
            cmd = [sys.executable, "-c", STUBBORN, str(report.with_suffix(".term"))]
            proc = subprocess.Popen(cmd, env=env, stdout=PIPE, start_new_session=True)
            proc.stdout.readline()
            return proc.pid
        if kind == "envless":
            proc = subprocess.Popen(["env", "-i", *SLEEP], start_new_session=True)
            reaping.record_process(run.dir, proc.pid, name="envless-sleep")
            return proc.pid
        if kind == "hydra":
            hydra = report.with_name("hydra.py")
            hydra.write_text(HYDRA)
            cmd = [sys.executable, str(hydra), "3", str(report.with_suffix(".hydra"))]
            proc = subprocess.Popen(cmd, env=env, stdout=PIPE, start_new_session=True)
            proc.stdout.readline()
            return proc.pid
        if kind == "bystander":
            # The runner's own child but not the run's, like a helper a noxfile starts itself.
            clean = {k: v for k, v in os.environ.items() if not k.startswith("NOXLIB_")}
            return subprocess.Popen(SLEEP, env=clean).pid
        if kind == "subtree":
            # A child that drops the environment and is not recorded: ours only by descent.
            script = "env -i sleep 120 & echo $!; wait"
            cmd = ["sh", "-c", script]
            sh = subprocess.Popen(cmd, env=env, stdout=PIPE, start_new_session=True)
            servers["subtree-parent"] = sh.pid
            return int(sh.stdout.readline())
        raise ValueError(kind)

    servers = {}
    for kind in kinds:
        servers[kind] = spawn(kind)
    facts = {"run_id": run.run_id, "run_dir": str(run.dir), "runner": os.getpid(),
             "warden": warden.process.pid, "servers": servers}
    report.with_suffix(".tmp").write_text(json.dumps(facts))
    report.with_suffix(".tmp").rename(report)
    if mode == "post":
        while not report.with_suffix(".go").exists():  # the test has read the pids
            time.sleep(0.01)
        # The order of the nox session's reap phase: sweep while the warden watches, then stop
        # it, then forget the run if nothing of it runs any more.
        reaping.reap_run(run, print, grace=grace, spare=(warden.process.pid,))
        warden.stop()
        reaping.finish_run(run, print)
    else:
        time.sleep(300)
    """
)

SWEEP = textwrap.dedent(
    r"""
    import sys
    from pathlib import Path
    from noxlib import reaping
    from noxlib.reaping import identity

    if len(sys.argv) > 3:
        identity.BOOT_ID_FILE = Path(sys.argv[3])
    reaping.reap_stale_runs(Path(sys.argv[1]), print, grace=1.0, dry_run=sys.argv[2] == "dry")
    """
)

ALL_KINDS = ("plain", "setsid", "daemon", "nohup", "stubborn", "envless")


class Tracker:
    """Every process a test started or learned of, to end by pid in the finalizer."""

    def __init__(self) -> None:
        self.procs: list[psutil.Process] = []
        self.popens: list[subprocess.Popen[bytes]] = []

    def add(self, pid: int) -> psutil.Process:
        proc = psutil.Process(pid)
        self.procs.append(proc)
        return proc

    def popen(self, *args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        child: subprocess.Popen[bytes] = subprocess.Popen(*args, **kwargs)  # type: ignore[call-overload]
        self.popens.append(child)
        self.add(child.pid)
        return child

    def cleanup(self) -> None:
        for proc in self.procs:
            if alive(proc):  # psutil refuses to signal a pid reused meanwhile
                proc.kill()
        for child in self.popens:
            child.wait(timeout=30)
        wait_gone(self.procs, 10)


@pytest.fixture
def tracker() -> Iterator[Tracker]:
    tracked = Tracker()
    yield tracked
    tracked.cleanup()


class Runner:
    """One runner process (a stand-in for nox) and what it reported."""

    def __init__(self, tracker: Tracker, tmp: Path, state: Path, mode: str, kinds: tuple[str, ...]):
        script = tmp / "runner.py"
        script.write_text(RUNNER)
        self.report = tmp / f"report-{len(tracker.popens)}.json"
        self.log = tmp / f"runner-{len(tracker.popens)}.log"
        with self.log.open("wb") as log:
            # Its own process group, like nox in a terminal: signals to it miss pytest.
            self.process = tracker.popen(
                [sys.executable, str(script), str(state), str(self.report), mode, ",".join(kinds)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.facts = self._wait_report(tracker)

    def _wait_report(self, tracker: Tracker) -> dict[str, object]:
        deadline = time.monotonic() + 60
        while not self.report.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"runner did not start:\n{self.output()}")
            time.sleep(0.05)
        facts: dict[str, object] = json.loads(self.report.read_text())
        self.servers = {k: tracker.add(pid) for k, pid in facts["servers"].items()}  # type: ignore[attr-defined]
        self.warden = tracker.add(int(facts["warden"]))  # type: ignore[call-overload]
        self.report.with_suffix(".go").touch()
        return facts

    @property
    def run_dir(self) -> Path:
        return Path(str(self.facts["run_dir"]))

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def start_runner(tracker: Tracker, tmp_path: Path) -> Callable[..., Runner]:
    def start(mode: str = "hold", kinds: tuple[str, ...] = ALL_KINDS, state: Path | None = None):
        return Runner(tracker, tmp_path, state or tmp_path / "state", mode, kinds)

    return start


def sweep(state: Path, *, dry_run: bool = False, boot_file: Path | None = None) -> str:
    """Run the pre hook's sweep in a process of its own and return its log."""
    args = [sys.executable, "-c", SWEEP, str(state), "dry" if dry_run else "real"]
    if boot_file:
        args.append(str(boot_file))
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout + done.stderr


def dead_run(start_runner: Callable[..., Runner], kinds: tuple[str, ...], **kw: object) -> Runner:
    """A run whose warden and runner were both SIGKILLed: its servers are orphans nobody
    watches, as after an OOM kill of the whole process group."""
    runner = start_runner(kinds=kinds, **kw)
    runner.warden.kill()
    assert wait_gone([runner.warden]) == []
    runner.kill()
    return runner


# --- the dead man's switch ---------------------------------------------------------------------


def test_warden_ends_every_kind_of_server_when_the_runner_is_sigkilled(
    start_runner: Callable[..., Runner],
) -> None:
    runner = start_runner()
    assert all(alive(p) for p in runner.servers.values())
    assert "noxlib" in " ".join(runner.warden.cmdline())
    assert "warden" in " ".join(runner.warden.cmdline())
    runner.kill()
    assert wait_gone([*runner.servers.values(), runner.warden]) == []
    log = runner.output()
    assert "the runner of run" in log
    assert "died" in log
    stubborn = runner.servers["stubborn"].pid
    assert f"killed by SIGKILL after 1 s: python (pid {stubborn})" in log
    assert f"(pid {runner.servers['envless'].pid})" in log
    assert not runner.run_dir.exists()


def test_ctrl_c_to_the_runners_process_group_does_not_stop_the_warden(
    start_runner: Callable[..., Runner],
) -> None:
    runner = start_runner(kinds=("setsid", "daemon"))
    os.killpg(runner.process.pid, signal.SIGINT)  # what Ctrl-C in its terminal does
    runner.process.wait(timeout=30)
    assert wait_gone([*runner.servers.values(), runner.warden]) == []
    assert "ended by SIGTERM: sleep" in runner.output()


def test_a_run_that_ends_normally_stops_its_warden_without_killing(
    start_runner: Callable[..., Runner], tmp_path: Path
) -> None:
    runner = start_runner(mode="post", kinds=("setsid",))
    assert runner.process.wait(timeout=60) == 0
    assert wait_gone([runner.warden]) == []
    assert "the runner of run" not in runner.output()  # the warden did not take it for dead


# --- the post hook -----------------------------------------------------------------------------


def test_post_hook_ends_every_leftover_and_logs_each_one(
    start_runner: Callable[..., Runner],
) -> None:
    runner = start_runner(mode="post")
    assert runner.process.wait(timeout=60) == 0
    assert wait_gone(list(runner.servers.values()), 10) == []
    log = runner.output()
    for kind, proc in runner.servers.items():
        how = "killed by SIGKILL after 1 s" if kind == "stubborn" else "ended by SIGTERM"
        name = "python" if kind == "stubborn" else "sleep"
        assert f"{how}: {name} (pid {proc.pid}) of run {runner.facts['run_id']}; command: " in log
    assert not runner.run_dir.exists()


def test_the_post_hook_leaves_the_runners_other_children_alone(
    start_runner: Callable[..., Runner],
) -> None:
    runner = start_runner(mode="post", kinds=("plain", "bystander"))
    assert runner.process.wait(timeout=60) == 0
    assert wait_gone([runner.servers["plain"]], 10) == []
    bystander = runner.servers["bystander"]
    assert alive(bystander), "a child of nox is not the run's for that alone"
    assert f"(pid {bystander.pid})" not in runner.output()


# --- the pre hook: dead runs, proven identity ---------------------------------------------------


def test_killed_warden_and_runner_are_reaped_by_the_next_pre_hook(
    start_runner: Callable[..., Runner], tmp_path: Path
) -> None:
    runner = dead_run(start_runner, ("setsid", "daemon", "nohup", "stubborn", "envless", "subtree"))
    time.sleep(0.5)
    servers = list(runner.servers.values())
    assert all(alive(p) for p in servers), "nobody should have reaped them yet"

    listed = sweep(tmp_path / "state", dry_run=True)
    assert all(alive(p) for p in servers), "a dry run ends nothing"
    for kind, proc in runner.servers.items():
        assert "would end: " in listed
        assert f"(pid {proc.pid})" in listed
        why = {
            "envless": "ledger entry 'envless-sleep'",
            "subtree": f"child of pid {runner.servers['subtree-parent'].pid}",
        }.get(kind, f"NOXLIB_RUN_ID={runner.facts['run_id']}")
        assert why in listed.split(f"(pid {proc.pid})")[1].splitlines()[0]
    assert runner.run_dir.exists()

    log = sweep(tmp_path / "state")
    assert wait_gone(servers, 10) == []
    assert f"killed by SIGKILL after 1 s: python (pid {runner.servers['stubborn'].pid})" in log
    assert "reaped 7 process(es) left by 1 dead run(s)" in log
    assert not runner.run_dir.exists()


def test_two_concurrent_runs_one_killed_the_others_servers_survive(
    start_runner: Callable[..., Runner], tmp_path: Path
) -> None:
    first = start_runner(kinds=("setsid", "daemon", "envless"))
    second = start_runner(kinds=("setsid", "daemon", "envless"))
    first.kill()
    assert wait_gone(list(first.servers.values())) == []
    sweep(tmp_path / "state")  # the pre hook of a third run in the same checkout
    assert all(alive(p) for p in second.servers.values())
    assert alive(second.warden)
    assert second.run_dir.exists()


def test_pid_reuse_and_a_stranger_with_the_same_command_line_are_untouched(
    start_runner: Callable[..., Runner], tracker: Tracker, tmp_path: Path
) -> None:
    runner = dead_run(start_runner, ("setsid",))
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("NOXLIB_")}
    stranger = tracker.popen(["sleep", "120"], env=clean_env)  # same command line as the server
    reused = tracker.popen(["sleep", "120"], env=clean_env)
    # The ledger names `reused`'s pid, but with another start: the pid was "reused".
    entry = _entry_record(psutil.Process(reused.pid), runner.run_dir.name, None, None)
    entry["start_ticks"] -= 500
    entry["create_time"] -= 5
    _append(runner.run_dir, entry)

    log = sweep(tmp_path / "state")
    assert wait_gone([runner.servers["setsid"]], 10) == []
    assert alive(tracker.procs[-2])
    assert alive(tracker.procs[-1])
    assert f"(pid {stranger.pid})" not in log
    assert f"(pid {reused.pid})" not in log


def test_a_changed_boot_id_ends_nothing(
    start_runner: Callable[..., Runner], tmp_path: Path
) -> None:
    runner = dead_run(start_runner, ("setsid", "envless"))
    other_boot = tmp_path / "boot_id"
    other_boot.write_text("00000000-0000-0000-0000-000000000000\n")

    log = sweep(tmp_path / "state", boot_file=other_boot)
    time.sleep(0.3)
    assert all(alive(p) for p in runner.servers.values())
    assert "ran before the last reboot" in log

    # With the real boot id the same kind of run is reaped: the boot id alone spared them.
    second = dead_run(start_runner, ("setsid", "envless"))
    sweep(tmp_path / "state")
    assert wait_gone(list(second.servers.values()), 10) == []


def test_hostile_ledger_lines_are_skipped_with_a_warning(
    start_runner: Callable[..., Runner], tracker: Tracker, tmp_path: Path
) -> None:
    if os.getuid() != 0:
        pytest.skip("starting a process of another uid needs root")
    runner = dead_run(start_runner, ("envless",))
    foreign = tracker.popen(["sleep", "120"], user=65534)
    honest = _entry_record(psutil.Process(foreign.pid), runner.run_dir.name, None, None)
    run_id = runner.run_dir.name
    hostile = [
        {**honest, "pid": 0},
        {**honest, "pid": 1, "start_ticks": 1},
        {**honest, "pid": -1},
        honest,  # another uid's process, proven otherwise
        {**honest, "uid": os.getuid()},  # claims to be ours; the live process says otherwise
        {**honest, "run_id": "some-other-run"},
    ]
    lines = [json.dumps(h) for h in hostile] + ["garbage {", "[1, 2]", "", json.dumps({"x": 1})]
    with (runner.run_dir / LEDGER).open("a") as ledger:
        ledger.write("\n".join(lines) + "\n")

    log = sweep(tmp_path / "state")
    assert "pid 0 is not a process noxlib may end" in log
    assert "pid 1 is not a process noxlib may end" in log
    assert "pid -1 is not a process noxlib may end" in log
    assert f"pid {foreign.pid} belongs to uid 65534" in log
    assert f"names run 'some-other-run', not this folder's run '{run_id}'" in log
    assert "not JSON" in log
    assert "not a JSON object" in log
    assert alive(tracker.procs[-1]), "another uid's process must survive"
    assert wait_gone([runner.servers["envless"]], 10) == [], "the honest entry is still reaped"


def test_an_empty_ledger_and_a_young_starting_folder_are_harmless(tmp_path: Path) -> None:
    runs_dir = tmp_path / "state" / "runs"
    (runs_dir / "20260101T000000-1-0000000000000000").mkdir(parents=True)
    (runs_dir / "20260101T000000-1-0000000000000000" / "lock").touch()
    (runs_dir / "20260101T000000-1-0000000000000000" / LEDGER).touch()
    starting = runs_dir / ".20260101T000001-2-0000000000000000.starting"
    starting.mkdir()
    (starting / "lock").touch()

    log = sweep(tmp_path / "state")
    assert "reaped 0 process(es) left by 1 dead run(s)" in log
    assert not (runs_dir / "20260101T000000-1-0000000000000000").exists()
    assert starting.exists(), "a run being born is not a dead run"


# --- the end of a run: its ledger outlives every process it names ------------------------------


def test_a_process_still_running_at_the_end_keeps_the_run_for_the_next_sweep(
    start_runner: Callable[..., Runner], tracker: Tracker, tmp_path: Path
) -> None:
    # Each SIGTERM makes a new copy, one more than the post hook has rounds: one survives it.
    runner = start_runner(mode="post", kinds=("hydra",))
    assert runner.process.wait(timeout=60) == 0
    pids = [int(pid) for pid in runner.report.with_suffix(".hydra").read_text().split()]
    assert len(pids) == 4, runner.output()
    *ended, survivor = pids
    assert not any(psutil.pid_exists(pid) and alive(psutil.Process(pid)) for pid in ended)
    last = tracker.add(survivor)
    assert alive(last)
    log = runner.output()
    assert f"still running: python (pid {survivor}) of run {runner.facts['run_id']}" in log
    assert f"kept {runner.run_dir} and its ledger" in log
    assert (runner.run_dir / LEDGER).is_file(), "the ledger must outlive what it names"

    swept = sweep(tmp_path / "state")  # the next run's pre hook finds a dead run
    assert wait_gone([last], 10) == [], swept
    assert f"ended by SIGTERM: python (pid {survivor}) of run {runner.facts['run_id']}" in swept
    assert not runner.run_dir.exists()

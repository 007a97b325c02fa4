"""Faults of the environment and of the workspace, through the real CLI in a subprocess: one line, exit 1, no traceback.

``FAULTS`` is a table: each row arranges a folder (files, a teacher server, limits), runs one command, and names
the exit code, the one ``error:`` line it must print and what must survive. The hostile-input corpus test can take
these rows as they are.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

from curation.importing import import_file
from curation.teacher.config import save_teacher
from curation.workspace import Workspace
from tests.conftest import log_record, write_jsonl
from tests.teacher.conftest import KEY, KEY_ENV, build, teacher_cfg
from tests.teacher.fake_openai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
OTHER_UID = 65534  # nobody: as root, permissions only bind another user


@dataclass
class Run:
    """A command to run in the case's folder, and how."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    file_size_limit: int | None = None  # RLIMIT_FSIZE in bytes: writes past it fail with EFBIG, like a full disk
    unprivileged: bool = False  # as another user when we are root (permissions do not bind root)
    during: Callable[[subprocess.Popen], None] | None = None  # something to do to the world while it runs


@dataclass(frozen=True)
class Fault:
    """One row: arrange the folder and return the run; the exit code, the error line (regex) and what survives."""

    id: str
    arrange: Callable[[Path], Run]
    code: int
    says: str
    survives: Callable[[Path], None] = lambda d: None


def logs(path: Path, n: int, *, start: int = 0, width: int = 40) -> Path:
    """``n`` log lines with distinct prompts of about ``width`` random characters."""
    rng = random.Random(start)
    rows = [
        log_record(f"ticket {i}: " + "".join(rng.choices(string.ascii_letters + " ", k=width)))
        for i in range(start, start + n)
    ]
    return write_jsonl(path, rows)


def workspace_with(folder: Path, n: int = 20) -> Path:
    """``ws.duckdb`` in ``folder`` with ``n`` imported records."""
    path = folder / "ws.duckdb"
    with Workspace.open(path) as ws:
        import_file(ws, logs(folder / "first.jsonl", n))
    return path


def records_and_batches(path: Path) -> tuple[int, list[tuple]]:
    with Workspace.open(path, create=False) as ws:
        return ws.scalar("SELECT count(*) FROM records"), ws.query("SELECT batch_id, n_imported FROM import_batches")


# -- the rows -----------------------------------------------------------------------------------------------


def _data_file_as_workspace(d: Path) -> Run:
    logs(d / "a.jsonl", 5)
    shutil.copy(d / "a.jsonl", d / "b.jsonl")
    return Run(["import", "a.jsonl", "-w", "b.jsonl"])


def _unchanged_copy(d: Path) -> None:
    assert (d / "b.jsonl").read_bytes() == (d / "a.jsonl").read_bytes()
    assert not (d / "b.artifacts").exists()


def _someone_elses_duckdb(d: Path) -> Run:
    con = duckdb.connect(str(d / "theirs.duckdb"))
    con.execute("CREATE TABLE invoices AS SELECT 1 AS id")
    con.close()
    logs(d / "a.jsonl", 5)
    return Run(["import", "a.jsonl", "-w", "theirs.duckdb"])


def _theirs_untouched(d: Path) -> None:
    con = duckdb.connect(str(d / "theirs.duckdb"), read_only=True)
    assert [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()] == ["invoices"]
    con.close()


def _disk_full(d: Path) -> Run:
    ws = workspace_with(d)
    logs(d / "big.jsonl", 2000, start=100, width=1500)  # ~3 MB of incompressible text
    return Run(["import", "big.jsonl", "-w", "ws.duckdb"], file_size_limit=ws.stat().st_size + 256 * 1024)


def _old_records_intact(d: Path) -> None:
    assert records_and_batches(d / "ws.duckdb") == (20, [(1, 20)])


def _truncated(d: Path) -> Run:
    ws = workspace_with(d, 300)
    data = ws.read_bytes()
    ws.write_bytes(data[: len(data) // 2])
    return Run(["stats", "-w", "ws.duckdb"])


def _overwritten(d: Path) -> Run:
    ws = workspace_with(d)
    data = bytearray(ws.read_bytes())
    data[12288:] = random.Random(0).randbytes(len(data) - 12288)  # every block after DuckDB's three headers
    ws.write_bytes(bytes(data))
    return Run(["stats", "-w", "ws.duckdb"])


def _read_only_folder_new_workspace(d: Path) -> Run:
    logs(d / "a.jsonl", 5)
    (d / "locked").mkdir()
    (d / "locked").chmod(0o555)
    return Run(["import", "a.jsonl", "-w", "locked/new.duckdb"], unprivileged=True)


def _read_only_folder_existing_workspace(d: Path) -> Run:
    (d / "locked").mkdir()
    workspace_with(d / "locked")
    (d / "locked" / "ws.duckdb").chmod(0o666)  # the file is writable, its folder (where the WAL goes) is not
    (d / "locked").chmod(0o555)
    logs(d / "more.jsonl", 5, start=50)
    return Run(["import", "more.jsonl", "-w", "locked/ws.duckdb"], unprivileged=True)


def _read_only_workspace_file(d: Path) -> Run:
    workspace_with(d).chmod(0o444)
    logs(d / "more.jsonl", 5, start=50)
    return Run(["import", "more.jsonl", "-w", "ws.duckdb"], unprivileged=True)


def _unreadable_input(d: Path) -> Run:
    workspace_with(d).chmod(0o666)
    logs(d / "secret.jsonl", 5, start=50).chmod(0o000)
    return Run(["import", "secret.jsonl", "-w", "ws.duckdb"], unprivileged=True)


def _teacher_workspace(d: Path, base_url: str) -> None:
    path = build(d / "ws.duckdb", n=12)
    with Workspace.open(path) as ws:
        save_teacher(ws, teacher_cfg(base_url, concurrency=1, max_retries=1, timeout_s=2.0))


def _teacher_killed_mid_run(d: Path) -> Run:
    server = FakeOpenAI(api_key=KEY, latency=0.05)
    _teacher_workspace(d, server.start())

    def kill_after_three(proc: subprocess.Popen) -> None:
        while server.total_successes() < 3 and proc.poll() is None:
            threading.Event().wait(0.01)
        server.default_plan = [{"kind": "drop"}] * 10  # connections that are open die with it
        server.stop()  # and new ones are refused

    return Run(["generate", "big", "-w", "ws.duckdb"], env={KEY_ENV: KEY}, during=kill_after_three)


def _answers_kept(d: Path) -> None:
    with Workspace.open(d / "ws.duckdb", create=False) as ws:
        kept = ws.scalar("SELECT count(*) FROM teacher_outputs")
        assert 3 <= kept < 12 and ws.scalar("SELECT status FROM teacher_runs") in ("done", "failed")


def _teacher_never_there(d: Path) -> Run:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _teacher_workspace(d, f"http://127.0.0.1:{port}/v1")
    return Run(["generate", "big", "-w", "ws.duckdb"], env={KEY_ENV: KEY})


def _where(clause: str) -> Callable[[Path], Run]:
    def arrange(d: Path) -> Run:
        _teacher_workspace(d, "http://127.0.0.1:9/v1")
        return Run(["generate", "big", "-w", "ws.duckdb", "--where", clause], env={KEY_ENV: KEY})

    return arrange


def _sequence_not_advanced(d: Path) -> None:
    with Workspace.open(d / "ws.duckdb", create=False) as ws:
        assert ws.scalar("SELECT nextval('record_seq')") == 13  # 12 records: nothing drew a number


def _slice_reads_a_file(d: Path) -> Run:
    workspace_with(d)
    (d / "secret.txt").write_text("hunter2")
    return Run(
        ["slices", "define", "leak", "-w", "ws.duckdb", "--sql", "(SELECT content FROM read_text('secret.txt'))"]
    )


def _no_slicing_stored(d: Path) -> None:
    with Workspace.open(d / "ws.duckdb", create=False) as ws:
        assert ws.scalar("SELECT count(*) FROM slicings") == 0


FAULTS = [
    Fault("data file as workspace", _data_file_as_workspace, 1,
          r"^error: b\.jsonl is not a Distill workspace \(it looks like JSON lines\)", _unchanged_copy),
    Fault("another program's DuckDB file", _someone_elses_duckdb, 1,
          r"theirs\.duckdb is a DuckDB database but not a Distill workspace \(it holds main\.invoices\)",
          _theirs_untouched),
    Fault("disk full during import", _disk_full, 1,
          r"^error: disk full while writing ws\.duckdb; nothing from this import was kept", _old_records_intact),
    Fault("truncated workspace", _truncated, 1,
          r"^error: workspace ws\.duckdb is damaged \(the file ends early: truncated\); restore it from a backup .*"
          r"distill restore BACKUP -w NEW\.duckdb"),
    Fault("overwritten workspace", _overwritten, 1,
          r"^error: workspace ws\.duckdb is damaged \(a block fails its checksum: overwritten\); .*distill restore"),
    Fault("new workspace in a read-only folder", _read_only_folder_new_workspace, 1,
          r"^error: permission denied: locked/new\.duckdb"),
    Fault("workspace in a read-only folder", _read_only_folder_existing_workspace, 1,
          r"^error: permission denied: locked/ws\.duckdb"),
    Fault("read-only workspace file", _read_only_workspace_file, 1, r"^error: permission denied: ws\.duckdb"),
    Fault("unreadable input file", _unreadable_input, 1, r"^error: permission denied: .*secret\.jsonl"),
    Fault("teacher killed mid-run", _teacher_killed_mid_run, 1,
          r"^error: the teacher at http://127\.0\.0\.1:\d+/v1 could not be reached for \d+ requests? "
          r"\(.*the \d+ answers received are kept", _answers_kept),
    Fault("teacher never reachable", _teacher_never_there, 1,
          r"^error: the teacher at .* could not be reached for 1 request \(cannot connect to .*running\?"),
    Fault("WHERE with a side effect", _where("nextval('record_seq') > 0"), 1,
          r"^error: bad WHERE clause: function nextval\(\) is not allowed", _sequence_not_advanced),
    Fault("WHERE that closes the query's parenthesis", _where("1=1) --"), 1,
          r"^error: bad WHERE clause: a '\)' at character 4 closes more than the condition opened"),
    Fault("slice expression that reads a file", _slice_reads_a_file, 1,
          r"^error: bad SQL expression: table functions \(reading files\) are not allowed", _no_slicing_stored),
]  # fmt: skip


# -- running them -------------------------------------------------------------------------------------------


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder another user can reach (pytest's tmp_path is private to root when root runs the tests)."""
    d = Path(tempfile.mkdtemp(prefix="distill-faults-"))
    d.chmod(0o777)
    yield d
    for p in [d, *d.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o777)
    shutil.rmtree(d)


def _as_other_user() -> tuple[list[str], dict]:
    """A command prefix and subprocess arguments that drop root; skip when neither can run the project here."""
    if os.geteuid() != 0:
        return [], {}
    ways: list[tuple[list[str], dict]] = [([], {"user": OTHER_UID, "group": OTHER_UID, "extra_groups": []})]
    if shutil.which("setpriv"):  # execs the interpreter before the new user's permissions apply to its path
        ways.append(([f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}", "--clear-groups"], {}))
    for prefix, kw in ways:
        cmd = ([shutil.which("setpriv") or "setpriv", *prefix] if prefix else []) + [
            sys.executable,
            "-c",
            "import distill.cli",
        ]
        try:
            probe = subprocess.run(cmd, env={"PYTHONPATH": str(ROOT)}, capture_output=True, timeout=60, **kw)
        except OSError:
            continue
        if probe.returncode == 0:
            return cmd[:-3], kw
    pytest.skip("running as root, and another user cannot run the project's Python here")


def run_cli(run: Run, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """``python -m distill ARGV`` in ``cwd`` as the run asks; its exit code, stdout and stderr."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISTILL_DEBUG", "DISTILL_WORKSPACE", KEY_ENV)}
    env |= {"PYTHONPATH": str(ROOT), "HOME": str(cwd), **run.env}
    prefix, kw = _as_other_user() if run.unprivileged else ([], {})
    if run.file_size_limit is not None:
        limit = run.file_size_limit

        def limit_files() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, not a signal
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        kw["preexec_fn"] = limit_files
    proc = subprocess.Popen([*prefix, sys.executable, "-m", "distill", *run.argv], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)  # fmt: skip
    if run.during is not None:
        run.during(proc)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def assert_one_error_line(out: subprocess.CompletedProcess, code: int, says: str) -> None:
    """Exit ``code``, exactly one ``error:`` line on stderr matching ``says``, no traceback anywhere."""
    shown = f"stdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    assert "Traceback" not in out.stdout + out.stderr, shown
    assert out.returncode == code, shown
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and re.search(says, errors[0]), shown


@pytest.mark.parametrize("fault", FAULTS, ids=[f.id for f in FAULTS])
def test_fault_gives_one_line(fault: Fault, folder: Path) -> None:
    run = fault.arrange(folder)
    out = run_cli(run, folder)
    assert_one_error_line(out, fault.code, fault.says)
    for p in [folder, *folder.rglob("*")]:  # as root again: let the checks read what was locked
        if p.is_dir():
            p.chmod(0o777)
    fault.survives(folder)


def test_an_unexpected_error_is_one_line_and_exit_70(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A bug (not an environment fault) is one line naming it, exit 70; DISTILL_DEBUG=1 adds the traceback."""
    from distill import cli
    from distill.commands import stats

    def broken(args: object) -> int:
        raise RuntimeError("a bug\nsecond line")

    monkeypatch.setattr(stats, "cmd_stats", broken)
    monkeypatch.delenv("DISTILL_DEBUG", raising=False)
    assert cli.main(["stats", "-w", str(tmp_path / "ws.duckdb")]) == cli.EXIT_INTERNAL == 70
    err = capsys.readouterr().err
    assert err == "error: internal error: RuntimeError: a bug (run with DISTILL_DEBUG=1 for the traceback)\n"
    monkeypatch.setenv("DISTILL_DEBUG", "1")
    assert cli.main(["stats", "-w", str(tmp_path / "ws.duckdb")]) == 70
    assert "Traceback" in capsys.readouterr().err


def test_a_worker_threads_error_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from distill import cli
    from distill.commands import stats

    def fails() -> None:
        raise OSError(28, "No space left on device", "x.tmp")

    def spawns(args: object) -> int:
        t = threading.Thread(target=fails)
        t.start()
        t.join()
        return 0

    monkeypatch.setattr(stats, "cmd_stats", spawns)
    monkeypatch.delenv("DISTILL_DEBUG", raising=False)
    assert cli.main(["stats"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("error: disk full while writing x.tmp") and "Traceback" not in err


def test_a_fresh_duckdb_file_becomes_a_workspace(folder: Path) -> None:
    """The one DuckDB file that is not a workspace yet and is taken: an empty one."""
    duckdb.connect(str(folder / "empty.duckdb")).close()
    logs(folder / "a.jsonl", 3)
    out = run_cli(Run(["import", "a.jsonl", "-w", "empty.duckdb", "--json"]), folder)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["imports"][0]["n_imported"] == 3

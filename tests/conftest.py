"""Shared test fixtures: paths, the real CIFAR-10 subset, and workflow runners."""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE_ENV = dict(os.environ, PYTHONHASHSEED="0")
SHARED_DATASET = REPO.parent / "shared" / "datasets" / "cifar10-subset.npz"


def load_benchmark(name: str):
    """The script ``benchmarks/<name>.py`` as a module (in ``sys.modules`` under ``name``: dataclasses
    look their module up there)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def pytest_addoption(parser):
    parser.addoption("--run-gpu", action="store_true", help="run tests that need a CUDA device")


# Test files that read the session's demo run (fixture ``demo_run``): one pytest-xdist worker runs
# them all, so that the demo runs once per session (pytest_xdist_make_scheduler).
DEMO_RUN_FILES = {"test_workflow_demo.py", "test_reruns.py"}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist gives each test file to one worker (its module fixtures, often a workflow run, are
    made once), and all the files that read the session's demo run to the same one."""
    from xdist.scheduler import LoadScopeScheduling

    class FileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::", 1)[0]
            return "demo_run" if Path(file).name in DEMO_RUN_FILES else file

    return FileScheduling(config, log)


def pytest_configure(config):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # Several test processes share the cores (pyproject.toml runs pytest-xdist workers): one torch
        # thread each, and OpenMP threads that sleep rather than spin while they wait, in the workflow
        # runs' jobs too; two pools spinning on the same cores slow each other down many times over.
        import torch

        torch.set_num_threads(1)
        SNAKEMAKE_ENV["OMP_WAIT_POLICY"] = "PASSIVE"


def pytest_collection_modifyitems(config, items):
    # Files with end-to-end runs first, the demo run's readers before them: pytest-xdist hands files
    # out in this order, so no long run starts last while the other workers have nothing left to do.
    slow_files = {item.path.name for item in items if "slow" in item.keywords}
    items.sort(key=lambda item: (item.path.name not in DEMO_RUN_FILES, item.path.name not in slow_files))
    if config.getoption("--run-gpu"):
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device; opt in with --run-gpu")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def cifar10_subset_path() -> Path:
    if not SHARED_DATASET.exists():
        pytest.skip(f"the real CIFAR-10 subset is not at {SHARED_DATASET} (CI has it; see README)")
    return SHARED_DATASET


def snakemake_command(*args: str) -> list[str]:
    """The ``snakemake`` command line with ``args`` (for a run that is not ``snakemake_process``'s)."""
    executable = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or shutil.which("snakemake")
    if executable is None:
        pytest.skip("snakemake is not installed")
    return [executable, *args]


class SnakemakeForks:
    """This test process's server of Snakemake runs (tests/snakemake_forks.py), started on first use."""

    process: subprocess.Popen | None = None

    @classmethod
    def run(cls, args: list[str], cwd: Path, env: dict, timeout: float) -> subprocess.CompletedProcess:
        if cls.process is None or cls.process.poll() is not None:
            cls.process = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("snakemake_forks.py"))],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=SNAKEMAKE_ENV,  # PYTHONHASHSEED is read when Python starts: the children share it
            )
        with tempfile.TemporaryDirectory(prefix="snakemake_run_") as folder:
            files = {name: os.path.join(folder, name) for name in ("stdout", "stderr", "pid")}
            request = {"args": args, "cwd": str(cwd), "env": dict(env)}
            request.update(stdout=files["stdout"], stderr=files["stderr"], pid_file=files["pid"])
            cls.process.stdin.write((json.dumps(request) + "\n").encode())
            cls.process.stdin.flush()
            reply, timed_out = cls._reply(timeout)
            if timed_out:
                with contextlib.suppress(ProcessLookupError):  # the run may have ended since
                    os.killpg(int(Path(files["pid"]).read_text()), signal.SIGKILL)
                cls._reply(60)
            output = {name: Path(files[name]).read_text(errors="replace") for name in ("stdout", "stderr")}
        if timed_out:
            raise subprocess.TimeoutExpired(["snakemake", *args], timeout, output["stdout"], output["stderr"])
        return subprocess.CompletedProcess(["snakemake", *args], reply["returncode"], **output)

    @classmethod
    def _reply(cls, timeout: float) -> tuple[dict, bool]:
        """The server's line about the run (read unbuffered: select sees only what is not yet read)."""
        fd, line = cls.process.stdout.fileno(), b""
        deadline = time.monotonic() + timeout
        while not line.endswith(b"\n"):
            if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                return {}, True
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError("the Snakemake fork server ended (tests/snakemake_forks.py)")
            line += chunk
        return json.loads(line), False


def python_settings(env: dict) -> dict:
    """The variables that Python reads once, when it starts (PYTHONPATH, PYTHONHASHSEED, ...): a forked
    run has its server's."""
    return {name: value for name, value in env.items() if name.startswith("PYTHON")}


def snakemake_process(
    args: Sequence[str], cwd: Path, env: dict | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """``snakemake`` run with ``args`` in ``cwd``, as ``subprocess.run(..., capture_output=True,
    text=True)`` gives it: forked from a process that has Snakemake imported (a second less per run)
    where this Python has Snakemake and ``env`` starts Python as that process was started, else the
    ``snakemake`` command."""
    env = SNAKEMAKE_ENV if env is None else env
    if importlib.util.find_spec("snakemake") is None or python_settings(env) != python_settings(
        SNAKEMAKE_ENV
    ):
        return subprocess.run(
            snakemake_command(*args), capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env
        )
    return SnakemakeForks.run(list(args), Path(cwd), env, timeout)


def merged_config(*configs: dict) -> dict:
    """Later configs laid over earlier ones key by key, as Snakemake combines config files."""
    from snakemake.utils import update_config

    result: dict = {}
    for config in configs:
        update_config(result, copy.deepcopy(config))
    return result


def read_yaml(path: Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


# What a run of config/demo.yaml sees: config.yaml's values (equal to the schema defaults,
# tests/test_reliability.py checks) with demo.yaml over them.
DEMO_CONFIG_FILE = REPO / "config" / "demo.yaml"
DEMO_CONFIG = merged_config(read_yaml(REPO / "config.yaml"), read_yaml(DEMO_CONFIG_FILE))
# The smallest configuration that runs every rule (synthetic data, two 2-epoch networks).
TINY_CONFIG_FILE = REPO / "tests" / "configs" / "tiny.yaml"
TINY_CONFIG = read_yaml(TINY_CONFIG_FILE)


def write_config(directory: Path, config: dict, name: str = "test_config.yaml") -> Path:
    path = Path(directory) / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class Plan:
    """What Snakemake would run, read from ``--dry-run --detailed-summary`` (a tab-separated table).

    ``pending`` maps every output file that would be (re)made to its rule and the status
    Snakemake gives it ("missing", "params changed", "ok" when only upstream reruns, ...).
    """

    pending: dict[str, tuple[str, str]]

    def rules(self, prefix: str = "") -> set[str]:
        return {rule for rule, _ in self.pending.values() if rule.startswith(prefix)}

    def outputs_of(self, prefix: str) -> set[str]:
        return {path for path, (rule, _) in self.pending.items() if rule.startswith(prefix)}

    def statuses(self, rule: str) -> set[str]:
        return {status for name, status in self.pending.values() if name == rule}


def parse_detailed_summary(text: str) -> Plan:
    lines = [line for line in text.splitlines() if "\t" in line]
    assert lines and lines[0].startswith("output_file\t"), f"no detailed summary in:\n{text[-3000:]}"
    header = lines[0].split("\t")
    pending = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split("\t")))
        if row["plan"] == "update pending":
            pending[row["output_file"]] = (row["rule"], row["status"])
    return Plan(pending)


def planned(workdir: Path, *configfiles: Path, snakefile: Path = REPO / "Snakefile", targets=()) -> Plan:
    """The plan of a dry run in ``workdir`` (config files in order, later ones win)."""
    args = [
        "--snakefile", str(snakefile), "--directory", str(workdir), "--dry-run", "--detailed-summary",
        "--resources", "gpu=0", "--cores", "2", *targets, "--configfile", *map(str, configfiles),
    ]  # fmt: skip
    result = snakemake_process(args, workdir)
    if result.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({result.returncode}): snakemake {' '.join(args)}\n{result.stderr[-6000:]}"
        )
    return parse_detailed_summary(result.stdout)


def copy_workflow(root: Path) -> Path:
    """A copy of everything a run reads from the repository (times kept): Snakefile, config.yaml
    (the default configuration and the tuning settings' order), rules, scripts, schemas, envs,
    profiles and the package, so that a test may edit the copy's code."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    root.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "config.yaml"):
        shutil.copy2(REPO / name, root / name)
    for folder in ("workflow", "envs", "profiles", "src/selectivity"):
        shutil.copytree(REPO / folder, root / folder, ignore=ignore)
    return root


def touch_every_output(workdir: Path, configfile: Path, targets: tuple[str, ...] = ()) -> Path:
    """A run of ``configfile`` (up to ``targets``, else all) whose every output is an empty file recorded
    as made now: for tests of what a change plans or submits, which read no output, at the cost of a
    few dry runs instead of a workflow run."""
    for path in planned(workdir, configfile, targets=targets).pending:
        (workdir / path).parent.mkdir(parents=True, exist_ok=True)
        (workdir / path).touch()
    # --forceall: every job is recorded (its params, code and inputs), as a real run records it; without
    # it a job whose empty outputs happened to be older than its inputs' would have no record
    run_snakemake(workdir, configfile, *targets, "--touch", "--forceall", "--cores", "1")
    assert planned(workdir, configfile, targets=targets).pending == {}, "a touched run still plans jobs"
    return workdir


def run_snakemake(
    workdir: Path,
    configfile: Path,
    *args: str,
    check: bool = True,
    timeout: int = 1200,
    snakefile: Path = REPO / "Snakefile",
    environment: dict | None = None,
) -> subprocess.CompletedProcess:
    """Run the repository's workflow in ``workdir`` with a config file.

    The workflow reads the ``config.yaml`` beside its Snakefile from any working directory, and
    the config file extends it (as the schema defaults would: tests/test_reliability.py checks
    that they are equal).
    """
    arguments = [
        "--snakefile",
        str(snakefile),
        "--directory",
        str(workdir),
        *args,
        # last: --configfile takes several values and would swallow targets after it
        "--configfile",
        str(configfile),
    ]
    result = snakemake_process(arguments, workdir, environment, timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({result.returncode}): snakemake {' '.join(arguments)}\n"
            f"--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-6000:]}"
        )
    return result


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The whole DAG on config/demo.yaml, run once per test session (a few minutes on 2 CPU cores)."""
    workdir = tmp_path_factory.mktemp("demo")
    run_snakemake(
        workdir, REPO / "config" / "demo.yaml", "--cores", "2", "--resources", "gpu=0", timeout=3600
    )
    return workdir

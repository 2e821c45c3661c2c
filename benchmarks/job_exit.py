"""What a rule job and a Snakemake run pay to exit, with and without freezing the garbage collector.

``selectivity.process_exit.freeze_collector_at_exit`` registers ``gc.freeze`` to run at exit:
Python's teardown then skips its full collections over the objects the process loaded. Every
job registers it in ``job_setup.start_job``, and Snakemake when it reads the workflow
(``workflow/rules/common.smk``). This benchmark times, in interleaved rounds (the same load for
every variant):

- for each of a few rules, a Python process that does what a job of that rule does before and
  after its work: ``start_job`` (with a stand-in for Snakemake's object), then every module the
  script and the job_setup helpers it calls import, then one small torch pass where the job runs
  a network (so torch's lazy state exists, as in a job); ended three ways:

  - ``teardown as before``: ``gc.freeze`` unregistered, the ordinary exit;
  - ``teardown now``: the exit ``start_job`` sets up;
  - ``no teardown``: ``os._exit(0)`` after the imports, the floor. Jobs do not end that way: called
    at exit it would turn a failed job's status into 0, and called on each script's last line it
    would mean editing every rule script, which makes Snakemake rerun every job of every finished
    run;

- ``snakemake --dry-run`` of the demo in an empty folder (what the tests run by the hundred), as
  before (a ``sitecustomize`` on PYTHONPATH keeps ``atexit`` from registering ``gc.freeze``) and now.

Printed per row: the median CPU seconds (user + system, of the process and its children) of each
variant, the CPU seconds saved, and the median wall seconds saved. CPU time is what a busy machine
runs out of, and it moves less than wall time with what else the machine does. Run from the
repository root:

    python benchmarks/job_exit.py [--rounds 5] [--rules train_networks half_ablation ...]
"""

from __future__ import annotations

import argparse
import ast
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"
DEFAULT_RULES = (
    "train_networks",
    "measure_tuning",
    "half_ablation_by_feature",
    "shift_invariance_by_feature",
    "plot_figures",
    "evaluate_claims",
    "causal_key",
)
DRY_RUN = "snakemake --dry-run (the demo)"
#: Keeps the workflow's freeze_collector_at_exit from registering anything: Snakemake as before.
ORDINARY_EXIT_SITECUSTOMIZE = """
import atexit, gc
_register = atexit.register
atexit.register = lambda function, *a, **k: function if function is gc.freeze else _register(function, *a, **k)
"""
ENDINGS = {
    "teardown as before": "import atexit, gc; atexit.unregister(gc.freeze)",
    "teardown now": "",
    "no teardown": "import os; os._exit(0)",
}


def imported_modules(tree: ast.AST) -> list[str]:
    """The modules named by every import statement in ``tree``, at any depth, in order."""
    modules = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.append(node.module)
    return list(dict.fromkeys(modules))


def job_setup_helpers_used(script: ast.AST, functions: dict[str, ast.FunctionDef]) -> set[str]:
    """The job_setup ``functions`` a script imports, and those they call in turn."""
    wanted = {
        alias.name
        for node in ast.walk(script)
        if isinstance(node, ast.ImportFrom) and node.module == "job_setup"
        for alias in node.names
    }
    pending = list(wanted)
    while pending:
        calls = {
            node.id
            for node in ast.walk(functions[pending.pop()])
            if isinstance(node, ast.Name) and node.id in functions
        }
        pending += sorted(calls - wanted)
        wanted |= calls
    return wanted


def job_modules(rule: str) -> list[str]:
    """The modules a job of ``rule`` imports: its script's and those of the job_setup helpers it uses."""
    script = ast.parse((SCRIPTS / f"{rule}.py").read_text())
    setup = ast.parse((SCRIPTS / "job_setup.py").read_text())
    functions = {node.name: node for node in setup.body if isinstance(node, ast.FunctionDef)}
    used = job_setup_helpers_used(script, functions)
    helpers = [node for name, node in functions.items() if name in used]  # in file order
    modules = imported_modules(script) + [module for node in helpers for module in imported_modules(node)]
    return [module for module in dict.fromkeys(modules) if module != "job_setup"]


def job_code(rule: str, log: Path, ending: str) -> str:
    """A process that starts like a job of ``rule``, imports what it imports and ends with ``ending``."""
    modules = job_modules(rule)
    lines = [
        "import sys, types",
        f"sys.path.insert(0, {str(SCRIPTS)!r})",
        "from job_setup import start_job",
        f"logger = start_job(types.SimpleNamespace(log=[{str(log)!r}], rule={rule!r}))",
        *(f"import {module}" for module in modules),
    ]
    if "torch" in modules:
        lines.append("import torch; torch.nn.Conv2d(3, 8, 3)(torch.rand(16, 3, 32, 32)).sum().item()")
    lines.append(ending)
    return "\n".join(lines)


def job_command(rule: str, log: Path, ending: str) -> tuple[list[str], dict]:
    return [sys.executable, "-c", job_code(rule, log, ending)], {**os.environ, "OMP_NUM_THREADS": "1"}


def dry_run_command(folder: Path, ordinary_exit: bool) -> tuple[list[str], dict]:
    """Snakemake's dry run of the demo in an empty folder, with the exit as before or as now."""
    run = folder / "dry_run"
    run.mkdir(exist_ok=True)
    environment = dict(os.environ)
    if ordinary_exit:
        site = folder / "ordinary_exit"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(ORDINARY_EXIT_SITECUSTOMIZE)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), environment.get("PYTHONPATH")]))
    snakemake = Path(sys.executable).with_name("snakemake")
    command = [str(snakemake), "--dry-run", "--quiet", "--cores", "2", "--resources", "gpu=0"]
    command += ["--snakefile", str(REPO / "Snakefile"), "--directory", str(run)]
    return command + ["--configfile", str(REPO / "config" / "demo.yaml")], environment


def time_process(command: list[str], environment: dict) -> tuple[float, float]:
    """The wall seconds and CPU seconds (user + system, children included) of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, env=environment, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rules", nargs="+", default=list(DEFAULT_RULES))
    arguments = parser.parse_args()
    print(f"load average before: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "job.log"
        commands = {
            (rule, name): job_command(rule, log, ending)
            for rule in arguments.rules
            for name, ending in ENDINGS.items()
        }
        commands[(DRY_RUN, "teardown as before")] = dry_run_command(Path(folder), ordinary_exit=True)
        commands[(DRY_RUN, "teardown now")] = dry_run_command(Path(folder), ordinary_exit=False)
        walls: dict[tuple[str, str], list[float]] = {key: [] for key in commands}
        cpus: dict[tuple[str, str], list[float]] = {key: [] for key in commands}
        for round_number in range(arguments.rounds):
            order = list(commands) if round_number % 2 == 0 else list(reversed(commands))
            for key in order:
                wall, cpu = time_process(*commands[key])
                walls[key].append(wall)
                cpus[key].append(cpu)
    print(f"load average after: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    print(f"\nmedian CPU seconds of a process's start and exit, {arguments.rounds} interleaved rounds\n")
    header = ["process", *ENDINGS, "CPU s saved", "wall s saved"]
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for row in [*arguments.rules, DRY_RUN]:
        cpu = {name: statistics.median(cpus[(row, name)]) for name in ENDINGS if (row, name) in cpus}
        wall = {name: statistics.median(walls[(row, name)]) for name in ENDINGS if (row, name) in walls}
        saved_cpu = cpu["teardown as before"] - cpu["teardown now"]
        saved_wall = wall["teardown as before"] - wall["teardown now"]
        cells = [f"{cpu[name]:.2f}" if name in cpu else "-" for name in ENDINGS]
        print(f"| {row} | " + " | ".join(cells) + f" | {saved_cpu:.2f} | {saved_wall:.2f} |")


if __name__ == "__main__":
    main()

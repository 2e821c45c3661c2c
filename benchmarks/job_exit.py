"""What a rule job pays to start and to exit, with and without freezing the garbage collector at exit.

Every rule script starts with ``job_setup.start_job``, which registers ``gc.freeze`` to run at
exit: Python's teardown then skips its full collections over the objects the job loaded. This
benchmark starts, for each of a few rules, a Python process that does what that rule's job does
before and after its work: ``start_job`` (with a stand-in for Snakemake's object), then every
module the script and the job_setup helpers it calls import, then one small torch pass where the
job runs a network (so torch's lazy state exists, as in a job). Three ways to end it are timed in
interleaved rounds (the same load for all three):

- ``teardown as before``: ``gc.freeze`` unregistered, the ordinary exit;
- ``teardown now``: the exit ``start_job`` sets up;
- ``no teardown``: ``os._exit(0)`` after the imports, the floor. Jobs do not end that way: called at
  exit it would turn a failed job's status into 0, and called on each script's last line it would
  mean editing every rule script, which makes Snakemake rerun every job of every finished run.

Printed per rule: the median CPU seconds (user + system, the process's own) of each, the CPU
seconds saved per job, and the median wall seconds saved. CPU time is what a busy machine runs
out of, and it moves less than wall time with what else the machine does. Run from the
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


def job_setup_helpers_used(script: ast.AST) -> set[str]:
    """The job_setup functions a script imports, and those they call in turn."""
    setup = ast.parse((SCRIPTS / "job_setup.py").read_text())
    functions = {node.name: node for node in setup.body if isinstance(node, ast.FunctionDef)}
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
    helpers = [
        node
        for node in setup.body
        if isinstance(node, ast.FunctionDef) and node.name in job_setup_helpers_used(script)
    ]
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


def time_process(code: str) -> tuple[float, float]:
    """The wall seconds and CPU seconds (user + system) of a Python process running ``code``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
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
        codes = {
            (rule, name): job_code(rule, log, ending)
            for rule in arguments.rules
            for name, ending in ENDINGS.items()
        }
        walls: dict[tuple[str, str], list[float]] = {key: [] for key in codes}
        cpus: dict[tuple[str, str], list[float]] = {key: [] for key in codes}
        for round_number in range(arguments.rounds):
            order = list(codes) if round_number % 2 == 0 else list(reversed(codes))
            for key in order:
                wall, cpu = time_process(codes[key])
                walls[key].append(wall)
                cpus[key].append(cpu)
    print(f"load average after: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    print(f"\nmedian CPU seconds of a job's start and exit, {arguments.rounds} interleaved rounds\n")
    header = ["rule", *ENDINGS, "CPU s saved per job", "wall s saved per job"]
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for rule in arguments.rules:
        cpu = {name: statistics.median(cpus[(rule, name)]) for name in ENDINGS}
        wall = {name: statistics.median(walls[(rule, name)]) for name in ENDINGS}
        saved_cpu = cpu["teardown as before"] - cpu["teardown now"]
        saved_wall = wall["teardown as before"] - wall["teardown now"]
        print(
            f"| {rule} | "
            + " | ".join(f"{value:.2f}" for value in cpu.values())
            + f" | {saved_cpu:.2f} | {saved_wall:.2f} |"
        )


if __name__ == "__main__":
    main()

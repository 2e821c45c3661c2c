"""The figures the README and docs/development.md quote, measured from real runs, never typed.

What it reads, and what it writes into ``docs/readme_figures.json`` (the last recorded output):

- ``plan``: the job counts of the shipped configurations, from ``snakemake --dry-run`` in an
  empty directory (seconds; nothing is computed), per rule and per stage, split into the jobs that
  run a network (submitted to a cluster) and the local ones (the rule files' ``localrule: True``);
- ``demo RUN``: a finished demo run's wall time (Snakemake's "Elapsed time" in the run's log), its
  jobs, the device and commit it ran on (the run's provenance) and the job-seconds per stage (its
  benchmark files). The run must have executed, from scratch and to the end, exactly the jobs the
  current code plans for the demo; a run of another DAG (older code, a resumed run) is refused.
  With ``--run`` the script first runs the demo itself in the empty folder RUN (command 1 of the
  README: ``snakemake --cores 2 --configfile config/demo.yaml --resources gpu=0``; ``--gpus 1`` on
  a GPU machine) and records the machine (CPU model, cores, load average and speed probe before
  and after). The time is filed under the device the run's networks were trained on (CPU or GPU);
- ``tests OUT``: the test suite's time, counts and slowest tests, and the fast tests' time, from
  the JUnit XML files ``OUT/suite.xml`` (``python -m pytest``) and ``OUT/fast.xml`` (``python -m
  pytest -m "not slow"``); with ``--run`` the script runs both itself (from the repository root, in
  this Python environment) and records the machine the same way. A suite with failures or errors
  is refused;
- ``probe``: prints the machine's speed now (cnn7 training steps per second on one thread, and the
  seconds of a Python process that imports torch): machines of one CPU model can differ by more
  than 1.5x from day to day, so compare times only beside their probes.

Each command updates its part of the JSON file, rewrites every marked block
(``<!-- readme_figures NAME -->`` ... ``<!-- /readme_figures NAME -->``) in README.md and docs/*.md
from it, and prints the blocks; ``show`` only prints them, ``show --check`` exits 1 where a file's
block differs (tests/test_readme_figures.py checks the same). Measure on a quiet machine::

    python benchmarks/readme_figures.py plan
    python benchmarks/readme_figures.py demo /tmp/demo_run --run
    python benchmarks/readme_figures.py tests /tmp/suite_run --run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
FIGURES_FILE = REPO / "docs" / "readme_figures.json"
DEMO_CONFIG = "config/demo.yaml"
SUITE_COMMAND = "python -m pytest"
FAST_COMMAND = 'python -m pytest -m "not slow"'
NOT_MEASURED = "not yet measured"

#: The configurations whose job counts the docs quote: (label, config file or None for config.yaml
#: alone, overlay laid over it).
PLANS = {
    "demo": ("the demo (`config/demo.yaml`)", DEMO_CONFIG, {}),
    "demo_orientation": (
        "the demo with `tuning.features: [orientation]`",
        DEMO_CONFIG,
        {"tuning": {"features": ["orientation"]}},
    ),
    "paper": (
        "the paper-scale study (`config.yaml`, `group_size: 1`)",
        None,
        {"training": {"group_size": 1}},
    ),
    "paper_grouped": (
        "the paper-scale study with `training.group_size: 5`",
        None,
        {"training": {"group_size": 5}},
    ),
}
#: Stages in the order of the workflow; a rule's stage is the name of the file that defines it.
STAGES = ("data", "training", "tuning", "causal", "claims", "figures", "target")
NETWORK_STAGES = ("training", "tuning", "causal")

# Markers of a block: the name says which rendering fills it.
BLOCK = re.compile(
    r"(?P<start><!-- readme_figures (?P<name>[\w-]+)[^>]*-->\n)(?P<body>.*?)(?P<end><!-- /readme_figures (?P=name) -->)",
    re.DOTALL,
)


class FiguresError(RuntimeError):
    """A run that cannot give the figures (incomplete, another DAG, failed tests), with the reason."""


# ---------------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class RuleInfo:
    """A rule of the workflow as its file defines it: a name (a pattern for generated rules, e.g.
    ``train_.+``), the stage (the file's name) and whether it runs on the submitting node."""

    pattern: str
    stage: str
    local: bool

    def matches(self, job: str) -> bool:
        return re.fullmatch(self.pattern, job) is not None

    @property
    def group(self) -> str:
        """The name under which jobs of this rule are counted (``train_*`` for generated rules)."""
        return self.pattern.replace(".+", "*")


RULE_HEADER = re.compile(r"^(?P<indent>[ \t]*)rule(?:[ \t]+(?P<name>\w+))?[ \t]*:[ \t]*(?:#.*)?$")
NAME_LINE = re.compile(r"^[ \t]*name:[ \t]*(?P<value>\S.*)?$")


def _name_pattern(literal: str) -> str:
    """A rule name given as a (format) string literal, as a pattern: ``f"train_{group.name}"`` -> ``train_.+``."""
    literal = literal.strip().rstrip(",")
    match = re.fullmatch(r"[fF]?(['\"])(?P<text>.*)\1", literal)
    if match is None:
        raise FiguresError(f"a rule name that is not a string literal: {literal!r}")
    parts = re.split(r"\{[^{}]*\}", match["text"])
    return ".+".join(re.escape(part) for part in parts)


def rule_catalogue(repo: Path = REPO) -> list[RuleInfo]:
    """Every rule of the workflow (the Snakefile and workflow/rules/*.smk), with stage and locality."""
    files = [(repo / "Snakefile", "target")] + [
        (path, path.stem) for path in sorted((repo / "workflow" / "rules").glob("*.smk"))
    ]
    rules = []
    for path, stage in files:
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            header = RULE_HEADER.match(line)
            if header is None:
                continue
            indent = len(header["indent"].expandtabs())
            body = []
            for following in lines[number + 1 :]:
                stripped = following.strip()
                if (
                    stripped
                    and not stripped.startswith("#")
                    and len(following) - len(following.lstrip()) <= indent
                ):
                    break
                body.append(following)
            name = header["name"]
            if name is None:
                for index, body_line in enumerate(body):
                    named = NAME_LINE.match(body_line)
                    if named:
                        value = named["value"] or next(text for text in body[index + 1 :] if text.strip())
                        name = _name_pattern(value)
                        break
                else:
                    raise FiguresError(f"{path.name}:{number + 1}: a rule without a name")
            else:
                name = re.escape(name)
            local = any(re.match(r"^\s*localrule:\s*True\b", text) for text in body)
            rules.append(RuleInfo(name, stage, local))
    return rules


def rule_of(job: str, rules: list[RuleInfo]) -> RuleInfo:
    for rule in rules:
        if rule.matches(job):
            return rule
    raise FiguresError(f"job {job!r} matches no rule of the workflow files (Snakefile, workflow/rules/*.smk)")


def grouped_counts(jobs: dict[str, int], rules: list[RuleInfo]) -> dict[str, int]:
    """Job counts per rule, the generated rules of a pattern counted together (``train_*``)."""
    counts: dict[str, int] = {}
    for job, count in jobs.items():
        group = rule_of(job, rules).group
        counts[group] = counts.get(group, 0) + count
    return dict(sorted(counts.items()))


def stage_counts(grouped: dict[str, int], rules: list[RuleInfo]) -> dict:
    """Jobs per stage, split into network jobs (submitted to a cluster) and local ones."""
    by_group = {rule.group: rule for rule in rules}
    result = {stage: {"submitted": 0, "local": 0} for stage in STAGES}
    for group, count in grouped.items():
        rule = by_group[group]
        result[rule.stage]["local" if rule.local else "submitted"] += count
    return {stage: counts for stage, counts in result.items() if counts["submitted"] or counts["local"]}


# ---------------------------------------------------------------------------------- Snakemake logs


def job_stats(text: str) -> dict[str, int]:
    """The first "Job stats" table of a Snakemake log or dry run: job name -> count ("total" left out)."""
    lines = text.splitlines()
    try:
        start = next(index for index, line in enumerate(lines) if line.strip() == "Job stats:")
    except StopIteration:
        raise FiguresError(
            "no 'Job stats' table (not a Snakemake run or dry run that planned jobs)"
        ) from None
    jobs: dict[str, int] = {}
    for line in lines[start + 3 :]:  # "Job stats:", the header and the rule of dashes
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():
            break
        if fields[0] != "total":
            jobs[fields[0]] = int(fields[1])
    if not jobs:
        raise FiguresError("an empty 'Job stats' table")
    return jobs


def snakemake(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), *args]
    environment = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=environment)


def planned_jobs(configfile: str | None, overlay: dict) -> dict[str, int]:
    """The jobs a configuration plans in an empty directory (``snakemake --dry-run``): name -> count."""
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        overlay_file = folder / "overlay.yaml"
        overlay_file.write_text(yaml.safe_dump(overlay))
        files = ([str(REPO / configfile)] if configfile else []) + [str(overlay_file)]
        run = folder / "run"
        run.mkdir()
        result = snakemake(["--dry-run", "--cores", "2", "--configfile", *files], run)
        if result.returncode != 0:
            raise FiguresError(
                f"the dry run of {configfile or 'config.yaml'} failed:\n{result.stderr[-3000:]}"
            )
        return job_stats(result.stdout + "\n" + result.stderr)


def plan_entry(jobs: dict[str, int], rules: list[RuleInfo]) -> dict:
    """What the docs quote of a plan: jobs in all, per rule (generated rules together), per stage."""
    grouped = grouped_counts(jobs, rules)
    return {"jobs": sum(grouped.values()), "rules": grouped, "stages": stage_counts(grouped, rules)}


def plan_figures(rules: list[RuleInfo] | None = None) -> dict:
    """The plan of every configuration of :data:`PLANS` (dry runs, seconds each)."""
    rules = rules if rules is not None else rule_catalogue()
    return {
        key: plan_entry(planned_jobs(configfile, overlay), rules)
        for key, (_, configfile, overlay) in PLANS.items()
    }


STEPS_DONE = re.compile(r"^(\d+) of (\d+) steps \(100%\) done$", re.MULTILINE)
ELAPSED = re.compile(r"^Elapsed time: (?:(\d+) days?, )?(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$", re.MULTILINE)
DATE = re.compile(r"^\s*Date: (\d{4}-\d{2}-\d{2})", re.MULTILINE)
CORES = re.compile(r"^Provided cores: (\d+)$", re.MULTILINE)


@dataclass(frozen=True)
class LoggedRun:
    path: Path
    jobs: dict[str, int]
    seconds: float
    date: str
    cores: int | None


def read_log(path: Path) -> LoggedRun:
    """A Snakemake log of a run that finished every job it planned."""
    text = path.read_text(errors="replace")
    jobs = job_stats(text)
    done = STEPS_DONE.findall(text)
    total = sum(jobs.values())
    if not done or done[-1][0] != done[-1][1] or int(done[-1][1]) != total:
        raise FiguresError(
            f"{path.name}: the run did not finish all {total} jobs it planned (no '{total} of {total} steps (100%) done')"
        )
    elapsed = ELAPSED.search(text)
    if elapsed is None:
        raise FiguresError(f"{path.name}: no 'Elapsed time' line (the run did not end, or Snakemake < 9)")
    days, hours, minutes, seconds = elapsed.groups()
    seconds = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    date = DATE.search(text)
    cores = CORES.search(text)
    return LoggedRun(
        path, jobs, seconds, date[1] if date else path.name[:10], int(cores[1]) if cores else None
    )


def _difference(run: dict[str, int], plan: dict[str, int]) -> str:
    lines = [
        f"{name}: ran {run.get(name, 0)}, planned {plan.get(name, 0)}"
        for name in sorted(set(run) | set(plan))
        if run.get(name, 0) != plan.get(name, 0)
    ]
    return "; ".join(lines[:12]) + (f"; ... ({len(lines) - 12} more)" if len(lines) > 12 else "")


def run_commit(run: Path) -> str:
    """The git commit of the package that made the run (its analysis jobs' provenance records)."""
    for record in sorted((run / "results").rglob("*.provenance.json")):
        commit = json.loads(record.read_text()).get("code", {}).get("git_commit")
        if commit:
            return commit[:12] if commit not in {"unknown"} else commit
    return "unknown"


def run_devices(run: Path) -> list[str]:
    """The devices the run's networks were trained on (results/provenance.csv)."""
    import csv

    path = run / "results" / "provenance.csv"
    if not path.is_file():
        raise FiguresError(f"{path.name}: the run has no results/provenance.csv (not a finished demo run)")
    with path.open(newline="") as handle:
        return sorted({row["device"] for row in csv.DictReader(handle)})


def stage_seconds(run: Path) -> dict[str, list]:
    """Per stage, the jobs with a benchmark file and the sum of their seconds (results/benchmarks/STAGE/)."""
    result = {}
    for folder in sorted(path for path in (run / "results" / "benchmarks").glob("*") if path.is_dir()):
        seconds = []
        for table in sorted(folder.rglob("*.tsv")):
            lines = table.read_text().splitlines()
            header = lines[0].split("\t")
            seconds.extend(float(line.split("\t")[header.index("s")]) for line in lines[1:] if line.strip())
        if seconds:
            result[folder.name] = [len(seconds), round(sum(seconds), 1)]
    return result


def machine() -> dict:
    """The machine that runs this script: CPU model, cores, load average now."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "load_before": [round(v, 2) for v in os.getloadavg()]}


#: The speed probe's fixed work (command ``probe``): rounds of cnn7 training steps timed, and
#: Python processes that import torch started. Cloud machines of one CPU model can run the same
#: work more than 1.5x slower on one day than on another, so a time means little without the
#: speed of the machine in that hour; a probe before and after a run gives it.
PROBE_ROUNDS = 3
PROBE_STEPS = 30
PROBE_CODE = """
import json, statistics, time
import torch
from selectivity.networks.models import build_model

torch.manual_seed(0)
torch.set_num_threads(1)
network = build_model("cnn7").train()
optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
images, labels = torch.rand(32, 3, 32, 32), torch.randint(0, 10, (32,))

def steps(count):
    for _ in range(count):
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(network(images), labels).backward()
        optimizer.step()

steps(5)  # warm-up: the first steps allocate and choose kernels
rates = []
for _ in range({rounds}):
    started = time.perf_counter()
    steps({steps})
    rates.append({steps} / (time.perf_counter() - started))
print(json.dumps(statistics.median(rates)))
"""


def checkout_environment() -> dict[str, str]:
    """This process's environment with this checkout's package first on the path, whatever an
    editable install elsewhere points to."""
    path = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path)


def speed_probe(rounds: int = PROBE_ROUNDS) -> dict:
    """The machine's speed now, in two numbers the workflow's time follows: cnn7 training steps per
    second (fp32, batch 32, one thread, median of ``rounds`` rounds; a plain loop, not the trainer)
    and the seconds a Python process takes to import torch and exit (median of ``rounds``), which
    every job that runs a network pays once."""
    environment = checkout_environment()
    code = PROBE_CODE.format(rounds=rounds, steps=PROBE_STEPS)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=False
    )
    if result.returncode != 0:
        raise FiguresError(f"the speed probe failed: {result.stderr.strip()[-2000:]}")
    starts = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=True, env=environment)
        starts.append(time.perf_counter() - started)
    return {
        "cnn7_steps_per_second": round(json.loads(result.stdout), 1),
        "torch_start_seconds": round(statistics.median(starts), 2),
    }


def measured_machine() -> dict:
    """:func:`machine` with the speed probe, taken before a timed run (the load average first)."""
    record = machine()
    record["probe_before"] = speed_probe()
    return record


def finish_machine(record: dict) -> None:
    """The load average and the speed probe after a timed run, into ``record``."""
    record["load_after"] = [round(v, 2) for v in os.getloadavg()]
    record["probe_after"] = speed_probe()


def demo_figures(run: Path, plan: dict[str, int], rules: list[RuleInfo]) -> dict:
    """The figures of a finished demo run that executed exactly the planned jobs ``plan``."""
    logs = sorted((run / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        raise FiguresError(f"{run.name}: no Snakemake log under .snakemake/log (not a run directory)")
    reasons = []
    for path in reversed(logs):  # the latest matching run
        try:
            logged = read_log(path)
        except FiguresError as error:
            reasons.append(str(error))
            continue
        if logged.jobs != plan:
            reasons.append(
                f"{path.name}: ran {sum(logged.jobs.values())} jobs, the current demo plans {sum(plan.values())} "
                f"in an empty directory ({_difference(logged.jobs, plan)}): a run of other code or "
                "configuration, or a resumed run"
            )
            continue
        devices = run_devices(run)
        record = run / "readme_figures_machine.json"
        return {
            "date": logged.date,
            "commit": run_commit(run),
            "seconds": round(logged.seconds, 1),
            "jobs": sum(logged.jobs.values()),
            "rules": grouped_counts(logged.jobs, rules),
            "cores": logged.cores,
            "device": ", ".join(devices),
            "machine": json.loads(record.read_text()) if record.is_file() else None,
            "stages": stage_seconds(run),
        }
    raise FiguresError("no log of a complete run of the current demo DAG:\n  " + "\n  ".join(reasons))


def device_kind(device: str) -> str:
    return "cpu" if device.startswith("cpu") else "gpu"


def run_demo(run: Path, cores: int, gpus: int = 0) -> None:
    """Command 1's workflow run (``--resources gpu=0``, or ``gpus`` GPUs), in the empty folder ``run``,
    with the machine recorded beside it."""
    if run.exists() and any(run.iterdir()):
        raise FiguresError(f"{run} is not empty: the demo is timed from scratch in an empty folder")
    run.mkdir(parents=True, exist_ok=True)
    record = measured_machine()
    args = ["--cores", str(cores), "--configfile", str(REPO / DEMO_CONFIG), "--resources", f"gpu={gpus}"]
    with (run / "readme_figures_demo.log").open("w") as log:
        command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), *args]
        result = subprocess.run(command, cwd=run, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    finish_machine(record)
    (run / "readme_figures_machine.json").write_text(json.dumps(record, indent=1) + "\n")
    if result.returncode != 0:
        raise FiguresError(f"the demo failed ({result.returncode}); see {run / 'readme_figures_demo.log'}")


# ---------------------------------------------------------------------------------- tests


def _test_name(classname: str, name: str, repo: Path) -> str:
    """pytest's JUnit ``classname`` (``tests.test_x`` or ``tests.test_x.TestY``) as a node id."""
    parts = classname.split(".")
    for cut in range(len(parts), 0, -1):
        if (repo / Path(*parts[:cut])).with_suffix(".py").is_file():
            return "::".join(["/".join(parts[:cut]) + ".py", *parts[cut:], name])
    return f"{classname}::{name}"


def suite_figures(xml: Path, command: str, repo: Path = REPO, slowest: int = 10) -> dict:
    """A passing test run's time, counts and slowest tests (setup and teardown included) from JUnit XML."""
    root = ElementTree.parse(xml).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    if not suites:
        raise FiguresError(f"{xml.name}: no testsuite element (not a pytest --junitxml file)")
    counts = {
        key: sum(int(suite.get(key, 0)) for suite in suites)
        for key in ("tests", "failures", "errors", "skipped")
    }
    if counts["failures"] or counts["errors"]:
        raise FiguresError(
            f"{xml.name}: {counts['failures']} failed and {counts['errors']} errors; the docs quote a passing run"
        )
    cases = [
        (_test_name(case.get("classname", ""), case.get("name", ""), repo), float(case.get("time", 0)))
        for suite in suites
        for case in suite.iter("testcase")
        if case.find("skipped") is None
    ]
    cases.sort(key=lambda case: (-case[1], case[0]))
    stamp = suites[0].get("timestamp", "")
    return {
        "command": command,
        "date": stamp[:10],
        "seconds": round(sum(float(suite.get("time", 0)) for suite in suites), 1),
        "passed": counts["tests"] - counts["skipped"],
        "skipped": counts["skipped"],
        "slowest": [[name, round(seconds, 1)] for name, seconds in cases[:slowest]],
    }


def git_commit() -> str:
    result = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if result.returncode != 0:
        return "unknown"
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()[:12] + ("-dirty" if dirty.stdout.strip() else "")


def run_tests(out: Path) -> None:
    """Both test commands of the README, each with JUnit XML and the machine recorded, into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for name, marker in (("suite", []), ("fast", ["-m", "not slow"])):
        record = measured_machine()
        record["commit"] = git_commit()
        with (out / f"{name}.log").open("w") as log:
            command = [sys.executable, "-m", "pytest", *marker, f"--junitxml={out / (name + '.xml')}"]
            result = subprocess.run(
                command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=checkout_environment()
            )
        finish_machine(record)
        (out / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
        if result.returncode != 0:
            raise FiguresError(
                f"{' '.join(command)} failed ({result.returncode}); see {out / (name + '.log')}"
            )


def tests_figures(out: Path) -> dict:
    figures = {}
    for name, command in (("suite", SUITE_COMMAND), ("fast", FAST_COMMAND)):
        xml = out / f"{name}.xml"
        if not xml.is_file():
            continue
        figures[name] = suite_figures(xml, command)
        record = out / f"{name}.json"
        figures[name]["machine"] = json.loads(record.read_text()) if record.is_file() else None
        figures[name]["commit"] = (
            figures[name]["machine"].pop("commit") if figures[name]["machine"] else "unknown"
        )
    if not figures:
        raise FiguresError(f"neither {out / 'suite.xml'} nor {out / 'fast.xml'} exists")
    return figures


# ---------------------------------------------------------------------------------- rendering


def duration(seconds: float) -> str:
    """``347.2`` -> ``5 min 47 s``; ``3725`` -> ``1 h 2 min``; ``12.3`` -> ``12 s``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _probe_words(record: dict) -> str:
    """The speed probe before (and after) a run, or nothing where it was not taken (older records)."""
    probes = [record[key] for key in ("probe_before", "probe_after") if key in record]
    if not probes:
        return ""
    steps = " / ".join(f"{probe['cnn7_steps_per_second']:g}" for probe in probes)
    starts = " / ".join(f"{probe['torch_start_seconds']:g}" for probe in probes)
    when = "before / after" if len(probes) == 2 else "before"
    return f"; speed probe ({when}): cnn7 {steps} steps/s on one thread, a torch process {starts} s"


def _machine_words(figures: dict) -> str:
    record = figures.get("machine")
    if record is None:
        cores = figures.get("cores")
        return f"{cores} cores given" if cores else "machine not recorded"
    load = record.get("load_before", ["?"])[0]
    return f"{record['cores']} cores ({record['cpu']}), load average {load} before{_probe_words(record)}"


def _measured(figures: dict | None, what: str) -> str:
    if figures is None:
        return NOT_MEASURED
    return f"{duration(figures['seconds'])} {what}; {_machine_words(figures)}; commit {figures['commit']}, {figures['date']}"


def current_demo(figures: dict, kind: str) -> dict | None:
    """The demo measured on a device kind, if it ran the jobs the demo plans now."""
    measured = figures.get("demo", {}).get(kind)
    plan = figures.get("plans", {}).get("demo", {}).get("rules")
    return measured if measured is not None and measured["rules"] == plan else None


def _submitted(plan: dict) -> int:
    return sum(counts["submitted"] for counts in plan["stages"].values())


def _passed(tests: dict | None) -> str:
    return f": {tests['passed']} passed, {tests['skipped']} skipped" if tests else ""


def drop_lapsed_demos(figures: dict) -> None:
    """Forget demo times measured on another DAG than the one the demo plans now (they would be stale)."""
    demos = figures.get("demo", {})
    for kind in list(demos):
        if current_demo(figures, kind) is None:
            print(
                f"readme_figures: the {kind} demo time ({demos[kind]['jobs']} jobs, commit {demos[kind]['commit']}) "
                f"is of another DAG than the demo's {figures['plans']['demo']['jobs']} jobs now: dropped; "
                "measure again (command demo)",
                file=sys.stderr,
            )
            del demos[kind]


def render_summary(figures: dict) -> str:
    plan = figures["plans"]["demo"]
    tests = figures.get("tests", {})
    suite, fast = tests.get("suite"), tests.get("fast")
    rows = [
        "| what | time |",
        "| --- | --- |",
        f"| the demo on a CPU ({plan['jobs']} jobs, {_submitted(plan)} of them run a network) | "
        f"{_measured(current_demo(figures, 'cpu'), 'wall')} |",
        f"| the demo on a GPU | {_measured(current_demo(figures, 'gpu'), 'wall')} |",
        f"| the tests, `{SUITE_COMMAND}`{_passed(suite)} | {_measured(suite, 'wall')} |",
        f"| the fast tests, `{FAST_COMMAND}`{_passed(fast)} | {_measured(fast, 'wall')} |",
    ]
    return "\n".join(rows) + "\n"


def render_slowest(figures: dict) -> str:
    suite = figures.get("tests", {}).get("suite")
    if suite is None:
        return f"The slowest tests: {NOT_MEASURED}.\n"
    lines = ["| test (setup included) | time |", "| --- | --- |"]
    lines += [f"| `{name}` | {duration(seconds)} |" for name, seconds in suite["slowest"]]
    return "\n".join(lines) + "\n"


def render_job_counts(figures: dict) -> str:
    lines = [
        "| configuration | jobs | run a network (submitted to a cluster): training / tuning / causal tests "
        "| local (of them causal keys) |",
        "| --- | --- | --- | --- |",
    ]
    for key, (label, _, _) in PLANS.items():
        plan = figures["plans"][key]
        split = " / ".join(str(plan["stages"].get(stage, {}).get("submitted", 0)) for stage in NETWORK_STAGES)
        local = sum(counts["local"] for counts in plan["stages"].values())
        keys = plan["rules"].get("causal_key", 0)
        lines.append(f"| {label} | {plan['jobs']} | {_submitted(plan)}: {split} | {local} ({keys}) |")
    return "\n".join(lines) + "\n"


def render_demo_stages(figures: dict) -> str:
    lines = []
    for kind in ("cpu", "gpu"):
        measured = current_demo(figures, kind)
        if measured is None:
            lines.append(f"- The demo on a {kind.upper()}: {NOT_MEASURED}.")
            continue
        stages = ", ".join(
            f"{stage} {duration(seconds)} ({jobs} job{'' if jobs == 1 else 's'})"
            for stage, (jobs, seconds) in measured["stages"].items()
        )
        lines.append(
            f"- The demo on a {kind.upper()} ({measured['device']}): {duration(measured['seconds'])} wall for "
            f"{measured['jobs']} jobs; {_machine_words(measured)}; commit {measured['commit']}, "
            f"{measured['date']}. Job-seconds of the jobs with a benchmark file: {stages or 'none'}."
        )
    return "\n".join(lines) + "\n"


RENDERINGS = {
    "summary": render_summary,
    "slowest-tests": render_slowest,
    "job-counts": render_job_counts,
    "demo-stages": render_demo_stages,
}


def render(name: str, figures: dict) -> str:
    """The body of block ``name``, between blank lines (so that Markdown sees a block of its own)."""
    if name not in RENDERINGS:
        raise FiguresError(f"unknown readme_figures block {name!r}; blocks are {sorted(RENDERINGS)}")
    return "\n" + RENDERINGS[name](figures) + "\n"


def documents(repo: Path = REPO) -> list[Path]:
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


def blocks(text: str) -> list[tuple[str, str]]:
    """The (name, body) of every marked block of a document."""
    return [(match["name"], match["body"]) for match in BLOCK.finditer(text)]


def filled(text: str, figures: dict) -> str:
    """``text`` with every marked block rewritten from ``figures``."""
    starts = len(re.findall(r"<!-- readme_figures [\w-]+", text))
    if starts != len(blocks(text)):
        raise FiguresError("a readme_figures block without its end marker '<!-- /readme_figures NAME -->'")
    return BLOCK.sub(lambda m: m["start"] + render(m["name"], figures) + m["end"], text)


def load(path: Path = FIGURES_FILE) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def save(figures: dict, path: Path = FIGURES_FILE) -> None:
    path.write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n")


def write_documents(figures: dict, repo: Path = REPO) -> list[Path]:
    changed = []
    for document in documents(repo):
        text = document.read_text()
        new = filled(text, figures)
        if new != text:
            document.write_text(new)
            changed.append(document)
    return changed


def print_blocks(figures: dict) -> None:
    for name in RENDERINGS:
        print(f"<!-- readme_figures {name} -->\n{render(name, figures)}<!-- /readme_figures {name} -->\n")


def arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("plan", help="job counts of the shipped configurations (dry runs)")
    demo = commands.add_parser("demo", help="a finished demo run's figures")
    demo.add_argument("run", type=Path, help="the run's working directory (with .snakemake/ and results/)")
    demo.add_argument(
        "--run", dest="execute", action="store_true", help="run the demo there first (empty folder)"
    )
    demo.add_argument("--cores", type=int, default=2, help="--cores of the demo run (the README's: 2)")
    demo.add_argument(
        "--gpus", type=int, default=0, help="--resources gpu=N of the demo run (the README's: 0)"
    )
    tests = commands.add_parser("tests", help="the test suite's figures from OUT/suite.xml and OUT/fast.xml")
    tests.add_argument("out", type=Path, help="folder of the JUnit XML files")
    tests.add_argument("--run", dest="execute", action="store_true", help="run both test commands first")
    commands.add_parser("probe", help="print the speed probe of this machine now (nothing is written)")
    show = commands.add_parser("show", help="print the blocks from docs/readme_figures.json")
    show.add_argument("--check", action="store_true", help="exit 1 where a document's block differs")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    options = arguments(argv)
    figures = load()
    try:
        if options.command == "probe":
            print(json.dumps({**machine(), "probe": speed_probe()}, indent=1))
            return 0
        if options.command == "show":
            if "plans" not in figures:
                raise FiguresError(f"{FIGURES_FILE.name} holds no plans yet: run the command plan first")
            print_blocks(figures)
            stale = [
                str(path.relative_to(REPO))
                for path in documents()
                if filled(path.read_text(), figures) != path.read_text()
            ]
            if options.check and stale:
                raise FiguresError(f"blocks differ from {FIGURES_FILE.name} in {stale}")
            return 0
        rules = rule_catalogue()
        if options.command != "tests" or "plans" not in figures:
            figures["plans"] = plan_figures(rules)
            drop_lapsed_demos(figures)
        if options.command == "demo":
            if options.execute:
                run_demo(options.run, options.cores, options.gpus)
            _, configfile, overlay = PLANS["demo"]
            demo = demo_figures(options.run, planned_jobs(configfile, overlay), rules)
            figures.setdefault("demo", {})[device_kind(demo["device"])] = demo
        elif options.command == "tests":
            if options.execute:
                run_tests(options.out)
            figures.setdefault("tests", {}).update(tests_figures(options.out))
    except FiguresError as error:
        print(f"readme_figures: {error}", file=sys.stderr)
        return 1
    save(figures)
    changed = write_documents(figures)
    print_blocks(figures)
    written = [str(path.relative_to(REPO)) for path in changed] or "no document"
    print(f"wrote {FIGURES_FILE.relative_to(REPO)}; rewrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The conventions a Snakemake user expects, and the files that say how to install and cite.

What this file protects (issue 31; README "Two commands", docs/usage.md "The paper-scale study" and
"SLURM", docs/development.md "Rerunning only what changed"; docs/architecture.md "Workflow conventions"):

- the workflow runs from any directory with its default configuration (the config.yaml beside
  the Snakefile), and ``--configfile`` extends it;
- ``train_networks`` in ``--set-resources``/``--set-threads`` (command line or profile) reaches
  every training job, and ``--forcerun`` on the rules that ``--list-rules`` names retrains every
  network;
- a change of ``tuning.selectivity_threshold`` reruns the summary, the claims and the figures,
  and no tuning, causal or training job;
- dry-run reason lines stay short: the provenance page's param is a digest of the config;
- the conda environments pin exact versions, the ones CI installs (envs/pip-constraints.txt);
- LICENSE and CITATION.cff say how the software may be used and cited.

Plans after a change are read from a "finished" tiny run that costs no computation: every output
file of tests/configs/tiny.yaml is created empty and ``snakemake --touch --forceall`` records it as
made with the current params and code, as a real run would.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import (
    DEMO_RUN_FILES,
    REPO,
    TINY_CONFIG,
    TINY_CONFIG_FILE,
    merged_config,
    parse_detailed_summary,
    read_yaml,
    snakemake_process,
    touch_every_output,
    write_config,
)
from selectivity.config import training_groups

DEFAULT_CONFIG = read_yaml(REPO / "config.yaml")
TINY = merged_config(DEFAULT_CONFIG, TINY_CONFIG)
TINY_TRAINING_RULES = {f"train_{group.name}" for group in training_groups(TINY)}
CAUSAL_RULES = {"class_selectivity", "half_ablation", "cumulative_ablation", "shift_invariance"}


def snakemake(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The repository's workflow run in ``cwd`` (``--configfile`` only where ``args`` give it)."""
    arguments = ["--snakefile", str(REPO / "Snakefile"), *args]
    result = snakemake_process(arguments, cwd)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({result.returncode}): snakemake {' '.join(arguments)}\n{result.stderr[-6000:]}"
        )
    return result


def job_blocks(output: str) -> dict[str, list[str]]:
    """Rule name -> the text of each of its jobs in a dry run's job listing."""
    blocks: dict[str, list[str]] = {}
    for match in re.finditer(r"^rule (\S+):\n((?:    .*\n)+)", output, re.MULTILINE):
        blocks.setdefault(match.group(1), []).append(match.group(2))
    return blocks


def resources_of(block: str) -> dict[str, str]:
    line = next(line for line in block.splitlines() if line.strip().startswith("resources:"))
    return dict(item.split("=", 1) for item in line.split(":", 1)[1].strip().split(", "))


def threads_of(block: str) -> int:
    """A job's threads (Snakemake prints the line only for more than one)."""
    match = re.search(r"^\s+threads: (\d+)$", block, re.MULTILINE)
    return int(match.group(1)) if match else 1


# ------------------------------------------------------------------ any directory


def test_runs_from_another_directory_with_the_default_config(tmp_path):
    """No --configfile, an empty working directory: the config.yaml beside the Snakefile is read."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    plan = parse_detailed_summary(snakemake(elsewhere, "--dry-run", "--detailed-summary").stdout)
    assert plan.rules("train_") == {f"train_{group.name}" for group in training_groups(DEFAULT_CONFIG)}
    # the same through --directory, run from yet another directory
    plan = parse_detailed_summary(
        snakemake(tmp_path, "--directory", str(elsewhere), "--dry-run", "--detailed-summary").stdout
    )
    assert plan.rules("train_") == {f"train_{group.name}" for group in training_groups(DEFAULT_CONFIG)}
    # and --configfile extends it there
    plan = parse_detailed_summary(
        snakemake(elsewhere, "--dry-run", "--detailed-summary", "--configfile", str(TINY_CONFIG_FILE)).stdout
    )
    assert plan.rules("train_") == TINY_TRAINING_RULES


def test_a_config_yaml_in_the_working_directory_is_named_not_read(tmp_path):
    write_config(tmp_path, TINY_CONFIG, "config.yaml")
    result = snakemake(tmp_path, "--dry-run", "--detailed-summary")
    output = result.stdout + result.stderr
    assert f"{tmp_path / 'config.yaml'} is not read" in output and "--configfile config.yaml" in output
    assert parse_detailed_summary(result.stdout).rules("train_") == {
        f"train_{group.name}" for group in training_groups(DEFAULT_CONFIG)
    }
    # given with --configfile, it is read and nothing is said
    result = snakemake(tmp_path, "--dry-run", "--detailed-summary", "--configfile", "config.yaml")
    assert "is not read" not in result.stdout + result.stderr
    assert parse_detailed_summary(result.stdout).rules("train_") == TINY_TRAINING_RULES


def test_the_slurm_profile_is_found_by_name_from_another_directory(tmp_path):
    result = snakemake(
        tmp_path, "--workflow-profile", "slurm", "--dry-run", "--configfile", str(TINY_CONFIG_FILE)
    )
    assert f"Using workflow specific profile {REPO / 'profiles' / 'slurm'}" in result.stdout + result.stderr


# ------------------------------------------------------------ all training jobs at once


def test_train_networks_sets_the_resources_and_threads_of_every_training_job(tmp_path):
    first, second = sorted(TINY_TRAINING_RULES)
    result = snakemake(
        tmp_path, "--dry-run", "--cores", "8", "--configfile", str(TINY_CONFIG_FILE),
        "--set-threads", "train_networks=3",
        "--set-resources", "train_networks:runtime=777", "train_networks:slurm_partition=long",
        f"{second}:runtime=55",  # a group's own name wins
    )  # fmt: skip
    jobs = job_blocks(result.stdout + result.stderr)
    assert set(jobs) >= TINY_TRAINING_RULES | {"measure_tuning"}
    for rule in TINY_TRAINING_RULES:
        (block,) = jobs[rule]
        resources = resources_of(block)
        assert resources["runtime"] == ("55" if rule == second else "777"), (rule, resources)
        assert resources["slurm_partition"] == "long" and threads_of(block) == 3
    # the other rules keep their own
    for block in jobs["measure_tuning"]:
        assert resources_of(block)["runtime"] != "777" and "slurm_partition" not in resources_of(block)


def test_train_networks_in_a_profile(tmp_path):
    profile = tmp_path / "profile"
    profile.mkdir()
    write_config(
        profile, {"set-resources": {"train_networks": {"runtime": 720, "gpu_model": "a100"}}}, "config.yaml"
    )
    result = snakemake(
        tmp_path, "--workflow-profile", str(profile), "--dry-run", "--configfile", str(TINY_CONFIG_FILE)
    )
    jobs = job_blocks(result.stdout + result.stderr)
    for rule in TINY_TRAINING_RULES:
        assert {"runtime": "720", "gpu_model": "a100"}.items() <= resources_of(jobs[rule][0]).items()


def test_without_train_networks_the_training_jobs_keep_their_own_resources(tmp_path):
    result = snakemake(tmp_path, "--dry-run", "--cores", "8", "--configfile", str(TINY_CONFIG_FILE))
    jobs = job_blocks(result.stdout + result.stderr)
    for rule in TINY_TRAINING_RULES:
        block = jobs[rule][0]
        # training_runtime: 60 + 2 minutes per epoch; training.cpu_threads
        assert resources_of(block)["runtime"] == str(60 + 2 * TINY["training"]["epochs"])
        assert threads_of(block) == TINY["training"]["cpu_threads"]


# ------------------------------------------------------------------- a finished run


@pytest.fixture(scope="module")
def touched_run(tmp_path_factory) -> Path:
    """The tiny config's every output, empty, recorded by ``--touch`` as made now: plans nothing."""
    return touch_every_output(tmp_path_factory.mktemp("touched"), TINY_CONFIG_FILE)


def plan_of(workdir: Path, *args: str, change: dict | None = None):
    files = [str(TINY_CONFIG_FILE)]
    if change:
        files.append(str(write_config(workdir.parent, change, "change.yaml")))
    result = snakemake(workdir, "--dry-run", "--detailed-summary", *args, "--configfile", *files)
    return parse_detailed_summary(result.stdout), result


def test_forcerun_on_the_listed_training_rules_retrains_every_network(touched_run):
    listed = snakemake(touched_run, "--list-rules", "--configfile", str(TINY_CONFIG_FILE)).stdout.split()
    training_rules = [name for name in listed if name.startswith("train_")]
    assert set(training_rules) == TINY_TRAINING_RULES
    plan, _ = plan_of(touched_run, "--forcerun", *training_rules)
    assert plan.rules("train_") == TINY_TRAINING_RULES
    assert {"measure_tuning", *CAUSAL_RULES, "evaluate_claims"} <= plan.rules()
    assert not {"prepare_dataset", "split_dataset", "extract_test_set"} & plan.rules()
    # train_networks names no rule: --forcerun says so instead of silently doing nothing
    result = snakemake(
        touched_run,
        "--dry-run",
        "--configfile",
        str(TINY_CONFIG_FILE),
        "--forcerun",
        "train_networks",
        check=False,
    )
    assert result.returncode != 0 and "No rule to produce train_networks" in result.stdout + result.stderr


def test_a_threshold_change_reruns_no_tuning_or_causal_job(touched_run):
    plan, _ = plan_of(touched_run, change={"tuning": {"selectivity_threshold": 0.4}})
    assert plan.statuses("summarise_selectivity") == {"params changed"}
    assert {"evaluate_claims", "depth_profiles", "plot_tuning_figures"} <= plan.rules()
    assert not plan.rules("train_")
    assert not {"measure_tuning", "collect_table", *CAUSAL_RULES} & plan.rules(), plan.rules()


def test_restating_default_settings_in_a_config_file_reruns_nothing(touched_run):
    """A config file that lists settings at their default values plans nothing: Snakemake compares a
    dict param by its repr, key order included, and the merged config puts a config file's keys
    before config.yaml's (here tuning.features went first, and every tuning job reran)."""
    restated = {
        "tuning": {
            key: DEFAULT_CONFIG["tuning"][key] for key in ("features", "shuffle_seed", "orientations")
        },
        "causal": {"ablation": {"seed": DEFAULT_CONFIG["causal"]["ablation"]["seed"]}},
    }
    plan, _ = plan_of(touched_run, change=restated)
    assert plan.rules() <= {"provenance"}, plan.rules()


def test_dry_run_reasons_do_not_print_the_config(touched_run):
    change = {"claims": {"equivalence_margin": 0.2}}
    plan, _ = plan_of(touched_run, change=change)
    assert plan.statuses("provenance") == {"params changed"}
    files = [str(TINY_CONFIG_FILE), str(write_config(touched_run.parent, change, "change.yaml"))]
    result = snakemake(touched_run, "--dry-run", "--configfile", *files)
    reasons = [line.strip() for line in (result.stdout + result.stderr).splitlines() if "reason:" in line]
    digests = r"before: '[0-9a-f]{16}' now: '[0-9a-f]{16}'"
    (provenance,) = [line for line in reasons if re.search(digests, line)]
    assert len(provenance) < 200, provenance
    # no job's params hold the config's sections (narrow params: claims get their settings only)
    sections = [f"'{section}': {{" for section in DEFAULT_CONFIG]
    assert not [line for line in reasons if any(section in line for section in sections)]


# ------------------------------------------------------------------ environments

ENVIRONMENTS = sorted((REPO / "envs").glob("*.yaml"))
CONSTRAINTS = REPO / "envs" / "pip-constraints.txt"
# conda-forge name -> the distribution name pip and importlib.metadata know
PIP_NAMES = {"pytorch": "torch", "matplotlib-base": "matplotlib"}
DEPENDENCY = re.compile(
    r"^(?P<name>[A-Za-z0-9_.\-]+)\s*(?P<operator>==|=)\s*(?P<version>[0-9][0-9A-Za-z.]*)$"
)


def pins(environment: Path) -> dict[str, str]:
    """Package (pip's name) -> pinned version, of one conda environment file."""
    result = {}
    for dependency in read_yaml(environment)["dependencies"]:
        match = DEPENDENCY.match(str(dependency))
        assert match, f"{environment.name}: {dependency!r} is not pinned (name ==version)"
        name, operator, version = match["name"], match["operator"], match["version"]
        if name == "python":
            assert (
                operator == "=" and version.count(".") == 1
            ), f"{environment.name}: pin python to a minor version"
        else:
            assert operator == "==", f"{environment.name}: {dependency!r} must pin exactly (==)"
        result[PIP_NAMES.get(name, name)] = version
    return result


def constraints() -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in CONSTRAINTS.read_text().splitlines()]
    return dict(line.split("==") for line in lines if line)


def pinned_versions() -> dict[str, str]:
    """Every package any environment pins, and its version (the environments must agree)."""
    result: dict[str, str] = {}
    for environment in ENVIRONMENTS:
        for name, version in pins(environment).items():
            assert result.setdefault(name, version) == version, f"{name}: {result[name]} vs {version}"
    return result


def test_environments_pin_exactly_the_versions_ci_installs():
    assert {path.name for path in ENVIRONMENTS} == {"torch.yaml", "analysis.yaml"}
    for environment in ENVIRONMENTS:
        assert read_yaml(environment)["channels"] == ["conda-forge", "nodefaults"]
    pinned = pinned_versions()
    assert {name: version for name, version in pinned.items() if name != "python"} == constraints()
    # .ci/run and the README install torch and torchvision at the pinned versions
    torch_pair = f"torch=={pinned['torch']} torchvision=={pinned['torchvision']}"
    assert f"pip install --quiet {torch_pair}\n" in (REPO / ".ci" / "run").read_text()
    assert "-c envs/pip-constraints.txt" in (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert f"pip install {torch_pair} && pip install -e" in readme
    assert f"pip install {torch_pair} --index-url https://download.pytorch.org/whl/cpu" in readme


def test_the_pin_check_finds_loose_pins(tmp_path):
    loose = tmp_path / "loose.yaml"
    loose.write_text("channels: [conda-forge]\ndependencies:\n  - numpy >=1.24\n")
    with pytest.raises(AssertionError, match="not pinned"):
        pins(loose)
    loose.write_text("channels: [conda-forge]\ndependencies:\n  - numpy =2.4\n")
    with pytest.raises(AssertionError, match="must pin exactly"):
        pins(loose)


def pinned_names() -> list[str]:
    """The packages the environments name (read leniently: the tests above judge the pins)."""
    names = {
        str(dependency).split()[0].split("=")[0]
        for env in ENVIRONMENTS
        for dependency in read_yaml(env)["dependencies"]
    }
    return sorted(PIP_NAMES.get(name, name) for name in names)


@pytest.mark.parametrize("package", pinned_names())
def test_installed_versions_are_the_pinned_ones(package):
    """In CI (installed from envs/pip-constraints.txt) the running environment has the pinned versions.

    Elsewhere (an install from the README, which does not pin numpy & co.) a difference is
    reported as a skip, not a failure.
    """
    pinned = pinned_versions()[package]
    if package == "python":
        installed = f"{sys.version_info.major}.{sys.version_info.minor}"
    else:
        try:
            installed = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pytest.skip(f"{package} is not installed in this environment")
        installed = installed.split("+")[0]  # 2.14.1+cu130 is torch 2.14.1 (the CUDA build)
    if installed != pinned:
        message = (
            f"{package} {installed} is installed but envs/ pin {pinned}: update envs/*.yaml and "
            "envs/pip-constraints.txt together"
        )
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(f"{message} (not the CI install: pip install -c envs/pip-constraints.txt)")


# ---------------------------------------------------------------- license, citation


def test_license_is_mit_in_the_license_file_the_package_and_the_citation():
    license_text = (REPO / "LICENSE").read_text()
    assert license_text.startswith("MIT License\n")
    assert "Copyright (c) 2026 the selectivity-workflow authors" in license_text
    assert 'license = "MIT"' in (REPO / "pyproject.toml").read_text()
    assert read_yaml(REPO / "CITATION.cff")["license"] == "MIT"


def test_citation_file_cites_the_software_and_both_papers():
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    for key in ("cff-version", "message", "title", "authors"):
        assert citation.get(key), f"CITATION.cff lacks {key}"
    assert citation["cff-version"] == "1.2.0" and citation["type"] == "software"
    assert all("name" in author or "family-names" in author for author in citation["authors"])
    assert (
        str(citation["version"])
        == re.search(r'^version = "(.+)"$', (REPO / "pyproject.toml").read_text(), re.M)[1]
    )
    references = citation["references"]
    for reference in references:
        assert {"type", "authors", "title"} <= set(reference), reference
    (ukita,) = [r for r in references if r["authors"][0]["family-names"] == "Ukita"]
    assert ukita["doi"] == "10.1016/j.neunet.2020.02.009"
    assert (ukita["journal"], ukita["volume"], ukita["start"], ukita["end"], ukita["year"]) == (
        "Neural Networks",
        125,
        185,
        193,
        2020,
    )
    (morcos,) = [r for r in references if r["authors"][0]["family-names"] == "Morcos"]
    assert morcos["title"] == "On the importance of single directions for generalization"
    assert morcos["year"] == 2018 and "ICLR" in morcos["conference"]["name"]
    assert {"type": "other", "value": "arXiv:1803.06959"}.items() <= morcos["identifiers"][0].items()


# ---------------------------------------------------------------- the suite's workers


def test_every_file_that_reads_the_demo_run_shares_its_worker():
    """pytest-xdist makes a session fixture once per worker: a file that reads ``demo_run`` outside
    DEMO_RUN_FILES (whose files share one worker, tests/conftest.py) would run the demo a second time."""
    readers = {
        path.name
        for path in (REPO / "tests").glob("test_*.py")
        if re.search(r"def \w+\([^)]*\bdemo_run\b", path.read_text())  # a test or fixture that takes it
    }
    assert readers == DEMO_RUN_FILES

"""The report agrees with its configuration (issue 31 item 2).

Captions and the workflow page are built from the configuration (no hard-coded counts or levels),
categories are the figure catalogue's and numbered once, the tables are attached with captions, a
single network's causal captions say that their errors are over test images, and the figures
across architectures are planned only with several architectures. The end-to-end check builds the
report of a run whose outputs are ``--touch``ed (every job recorded, nothing computed: seconds).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest
from docutils.core import publish_parts

from conftest import (
    REPO,
    TINY_CONFIG,
    merged_config,
    parse_detailed_summary,
    planned,
    read_yaml,
    run_snakemake,
    write_config,
)
from selectivity.config import validate_config
from selectivity.figures.catalogue import CATEGORIES, across_drawn, caption_facts
from selectivity.networks.catalogue import analysed_networks, models_of

REPORT = REPO / "workflow" / "report"
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
CAPTIONS = sorted(REPORT.rglob("*.rst"))
TWO_MODELS = {"networks": {"models": ["cnn7", "cnn11"], "seeds": [0]}}


def complete(*overrides: dict) -> dict:
    """config.yaml with tiny.yaml and ``overrides`` over it, schema defaults filled in."""
    config = merged_config(read_yaml(REPO / "config.yaml"), TINY_CONFIG, *overrides)
    validate_config(config, SCHEMA)
    return config


def render(path: Path, config: dict, params: dict | None = None, wildcards: dict | None = None) -> str:
    """A caption as the report renders it (Snakemake's Jinja settings), as plain text; docutils
    warnings (broken markup, e.g. words glued by a block tag) fail the test."""
    environment = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    snakemake = SimpleNamespace(
        config=config,
        params=SimpleNamespace(**(params or {})),
        wildcards=SimpleNamespace(**(wildcards or {"model": "cnn7"})),
    )
    text = environment.from_string(path.read_text()).render(snakemake=snakemake)
    html = publish_parts(text, writer="html", settings_overrides={"halt_level": 2})["body"]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).replace("&quot;", '"')


def facts(**values) -> dict:
    return dict(
        dict(given=False, networks=5, clean_networks=5, least_corruption=0.0, causal_networks=5), **values
    )


def figure_params(config: dict, caption: dict) -> dict:
    stimuli = dict(image_size=32, orientations=12, phases=4, spatial_frequencies=9, confidence=0.95)
    return {"caption": caption, "options": {"stimuli": stimuli}}


# ------------------------------------------------------------------ categories and hard-coded numbers


def test_report_categories_are_the_catalogues_numbered_once():
    numbers = [name.split(".")[0] for name in CATEGORIES.values()]
    assert numbers == [str(n) for n in range(1, len(CATEGORIES) + 1)]  # 1..6, each once
    rules = "".join(path.read_text() for path in (REPO / "workflow" / "rules").glob("*.smk"))
    assert not re.findall(r'category="\d', rules), "report categories come from CATEGORIES"
    page = (REPORT / "workflow.rst").read_text()
    for named in re.findall(r"\*\*(\d\. [^*]+)\*\*", page):
        assert any(value.startswith(named) for value in CATEGORIES.values()), named


@pytest.mark.parametrize("path", CAPTIONS, ids=[str(p.relative_to(REPORT)) for p in CAPTIONS])
def test_captions_hard_code_no_count_or_level(path):
    text = re.sub(r"\{[{%].*?[%}]\}", " ", path.read_text(), flags=re.S)  # what the config fills in
    text = re.sub(r"\s+", " ", text).replace(
        "80% power", ""
    )  # the power of the planning figures, a constant of the method
    assert not re.findall(r"\d+(?:\.\d+)?\s*%", text), "a percentage written by hand"
    counted = r"\b\d+\s+(?:orientations|phases|spatial frequencies|seeds|networks|epochs|levels|draws)\b"
    assert not re.findall(counted, text), "a count written by hand"


# ------------------------------------------------------------------ captions built from the config


def test_every_caption_renders_for_trained_and_given_models_without_markup_warnings():
    config = complete()
    for caption in (facts(), facts(given=True, networks=1, clean_networks=1, causal_networks=1)):
        for path in CAPTIONS:
            params = figure_params(config, caption)
            wildcards = {"model": "cnn7", "table": "half_ablation", "causal_table": "half_ablation"}
            assert render(path, config, params, wildcards), path


def test_counts_and_levels_come_from_the_config():
    config = complete(
        {"claims": {"confidence": 0.9}, "causal": {"ablation": {"fraction": 0.25}}, "tuning": {"phases": 8}}
    )
    params = figure_params(config, facts())
    params["options"]["stimuli"].update(phases=8, spatial_frequencies=5)
    stimuli = render(REPORT / "figures/stimuli.rst", config, params, {"model": "cnn7"})
    assert "12 orientations x 8 phases x 5 spatial frequencies for 32-px inputs" in stimuli
    half = render(REPORT / "figures/half_ablation.rst", config, params, {"model": "cnn7"})
    assert "top 25% of units" in half and "90% t intervals across networks" in half and "50%" not in half
    assert "means over the 5 networks" in half
    for name in ("training_curves", "selectivity_by_depth", "selectivity_over_training", "shift_invariance"):
        assert "90% t intervals" in render(REPORT / f"figures/{name}.rst", config, params, {"model": "cnn7"})
    claims = render(REPORT / "figures/claims.rst", config, params, {"model": "cnn7"})
    assert "one-sided 90% bounds" in claims and "margin (0.1 nats per image)" in claims


def test_the_over_training_caption_describes_the_clean_networks_it_shows():
    config = complete()
    text = render(REPORT / "figures/selectivity_over_training.rst", config, figure_params(config, facts()))
    assert "per label-corruption level" not in text
    assert "networks with clean labels" in text and "Means over the 5 networks (seeds)" in text
    text = render(
        REPORT / "figures/selectivity_over_training.rst",
        config,
        figure_params(config, facts(least_corruption=0.2, clean_networks=1)),
    )
    assert "label corruption 0.2" in text and "One network: no interval across networks" in text


@pytest.mark.parametrize("figure", ["half_ablation", "shift_invariance", "cumulative_ablation"])
def test_a_given_model_with_one_network_has_its_errors_over_images_or_none(figure):
    config = complete()
    one = facts(given=True, networks=1, clean_networks=1, causal_networks=1)
    text = render(REPORT / f"figures/{figure}.rst", config, figure_params(config, one), {"model": "vgg16"})
    assert "across networks" not in text.replace("not an interval across networks", "").replace(
        "no interval across networks", ""
    )
    assert "clean labels" not in text  # a given network has no training labels here
    if figure == "cumulative_ablation":
        assert "One network: each line is that network's curve" in text
    else:
        assert "± SEM over the test images" in text


def test_the_workflow_page_describes_this_run():
    page = render(REPORT / "workflow.rst", complete())
    assert "2 trained networks: models cnn7 x label-corruption levels 0.0 x seeds 0, 1" in page
    assert "as many spatial frequencies as the input size allows" in page
    assert "top, bottom, a random or a matched random 50%" in page
    assert "not drawn: this run trains one architecture (cnn7)" in page
    assert "none in this run" in page  # no given networks
    page = render(
        REPORT / "workflow.rst",
        complete(TWO_MODELS, {"tuning": {"spatial_frequencies": 5}, "claims": {"confidence": 0.9}}),
    )
    assert "2 trained networks: models cnn7, cnn11" in page and "5 spatial frequencies" in page
    assert "one-sided 90% bounds" in page and "not drawn" not in page


def test_caption_facts_count_the_networks_each_figure_shows():
    config = complete(
        {"networks": {"label_corruption": [0.0, 0.5]}, "vgg16": {"enabled": True, "weights": "random"}}
    )
    groups = {group.model: group for group in models_of(analysed_networks(config))}
    trained = caption_facts(groups["cnn7"].networks, trained=True)
    assert trained == dict(given=False, networks=4, clean_networks=2, least_corruption=0.0, causal_networks=2)
    given = caption_facts(groups["vgg16_imagenet"].networks, trained=False)
    assert given["given"] and given["networks"] == 1 and given["causal_networks"] == 0  # no test images


# ------------------------------------------------------------------ the workflow's plan and the report


def test_figures_across_architectures_need_several(tmp_path):
    assert not across_drawn(["cnn7"]) and across_drawn(["cnn7", "resnet20"])
    one = planned(tmp_path, write_config(tmp_path, complete()))
    assert "plot_across_figures" not in one.rules()
    assert "results/aggregate/depth_profiles.csv" in one.pending  # the table is still written
    assert "results/aggregate/tuning.csv" in one.outputs_of("collect_tuning_table")
    two = planned(tmp_path, write_config(tmp_path, complete(TWO_MODELS), "two.yaml"))
    assert two.outputs_of("plot_across_figures") >= {"results/figures/architectures/depth_profiles.png"}


@pytest.fixture(scope="module")
def touched_report(tmp_path_factory) -> tuple[dict, dict, str]:
    """The report of a tiny run with other settings whose every output is touched, not computed:
    (results by path, categories, the workflow page)."""
    workdir = tmp_path_factory.mktemp("report")
    config = copy.deepcopy(TINY_CONFIG)
    config = merged_config(
        config,
        {
            "tuning": {"spatial_frequencies": 5},
            "claims": {"confidence": 0.9},
            "causal": {"ablation": {"fraction": 0.25}},
        },
    )
    configfile = write_config(workdir, config)
    plan = parse_detailed_summary(
        run_snakemake(workdir, configfile, "--dry-run", "--detailed-summary").stdout
    )
    for path in plan.pending:
        (workdir / path).parent.mkdir(parents=True, exist_ok=True)
        (workdir / path).touch()
    run_snakemake(workdir, configfile, "--touch", "--cores", "1")
    run_snakemake(workdir, configfile, "--report", "report.html")
    page = (workdir / "report.html").read_text()
    results = json.loads(re.search(r"var results = (\{.*?\});\n", page, re.S).group(1))
    categories = json.loads(re.search(r"var categories = (\{.*?\});\n", page, re.S).group(1))
    return results, categories, page


def test_the_report_attaches_the_tables_in_their_categories(touched_report):
    results, categories, _ = touched_report
    tables = {category: set(groups.get("tables", [])) for category, groups in categories.items()}
    assert {"results/claims.csv", "results/aggregate/networks_needed.csv"} <= tables[CATEGORIES["claims"]]
    assert "results/aggregate/depth_profiles.csv" in tables[CATEGORIES["claims"]]
    assert "results/aggregate/training_metrics.csv" in tables[CATEGORIES["training"]]
    assert "results/aggregate/selectivity_summary.csv" in tables[CATEGORIES["selectivity"]]
    assert {
        "results/aggregate/half_ablation.csv",
        "results/aggregate/half_ablation_summary.csv",
        "results/aggregate/shift_invariance_summary.csv",
    } <= tables[CATEGORIES["causal"]]
    assert "results/aggregate/tuning.csv" not in results  # per unit and checkpoint: too large
    for path in set().union(*tables.values()):
        assert len(results[path]["caption"]) > 100, path
    assert set(categories) <= set(CATEGORIES.values())


def test_the_reports_captions_follow_the_runs_settings(touched_report):
    results, _, page = touched_report
    caption = {
        path: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", entry["caption"])) for path, entry in results.items()
    }
    assert (
        "12 orientations x 4 phases x 5 spatial frequencies for 32-px inputs"
        in caption["results/figures/cnn7/stimuli.png"]
    )
    half = caption["results/figures/cnn7/half_ablation.png"]
    assert "top 25% of units" in half and "Bars are means over the 2 networks" in half and "90% t" in half
    assert "System Message" not in page
    workflow_page = re.sub(r"(?:\\n|\s)+", " ", page)  # the page is a string in the report's script
    assert "not drawn: this run trains one architecture (cnn7)" in workflow_page

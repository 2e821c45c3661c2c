"""The declared table schemas: they accept what the package writes, refuse what is wrong with a
message naming the file and the column or unit, agree with the code that writes each table, and
generate the table columns of docs/architecture.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from selectivity.tuning.features import FEATURES, tuning_feature_columns
import pytest
import torch

from selectivity import tables
from selectivity.causal.ablation import (
    CONDITIONS,
    RANKINGS,
    AblationSettings,
    cumulative_ablation,
    half_ablation,
)
from selectivity.networks.loaded import LoadedNetwork
from selectivity.claims.table import CLAIM_COLUMNS, CLAIM_IDS
from selectivity.causal.class_selectivity import class_selectivity_table
from selectivity.claims.depth_profiles import DEPTH_PROFILE_COLUMNS
from selectivity.identity import (
    checkpoint_identity,
    describe_identity,
    identity_differences,
    identity_from_path,
    network_identity,
)
from selectivity.causal.invariance import DIRECTIONS, InvarianceSettings, shift_invariance
from selectivity.io import save_table
from selectivity.causal.matching import layer_strata, preferred_frequencies_from_table
from selectivity.networks.models import build_model
from selectivity.tuning.summaries import (
    CHECKPOINT_COLUMNS,
    METRIC_COLUMNS,
    SUMMARY_VALUE_COLUMNS,
    selectivity_summary,
)
from selectivity.tables import SCHEMAS, TableError, read_table, validate_table
from selectivity.training import METRICS_COLUMNS
from selectivity.tuning.feature_summaries import feature_summary
from selectivity.tuning.analysis import STIMULUS_SETS, TUNING_COLUMNS, TuningSettings, analyse_tuning
from selectivity.claims.verdicts import NOT_APPLICABLE, VERDICTS

REPO = Path(__file__).resolve().parents[1]
IDENTIFIERS = {
    "model": "cnn7",
    "dataset": "synthetic",
    "label_corruption": 0.0,
    "seed": 0,
    "checkpoint": "best",
    "epoch": 2,
}
NETWORK_PATH = "cnn7/synthetic/corruption0.00/seed0"
LAYERS = ("conv1", "conv2")


@pytest.fixture(scope="module")
def network() -> LoadedNetwork:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model("cnn7").eval()
    return LoadedNetwork(model, torch.full((3, 32, 32), 0.45), 2, {})


@pytest.fixture(scope="module")
def produced(network) -> dict[str, pd.DataFrame]:
    """One table of every kind, as the package writes it (a random cnn7, a few test images)."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(20, 3, 32, 32, generator=generator)
    labels = torch.arange(20) % 10
    tuning = analyse_tuning(network, TuningSettings(), IDENTIFIERS).table
    class_selectivity = class_selectivity_table(
        network, images, labels, network.model.layer_names, IDENTIFIERS, 10
    )
    gosi = {
        layer: rows.sort_values("unit")["gosi"].to_numpy()
        for layer, rows in tuning[tuning.stimulus_set == "gratings"].groupby("layer")
    }
    scores = {
        "gosi": gosi,
        "class_selectivity": {
            layer: rows["class_selectivity_index"].to_numpy()
            for layer, rows in class_selectivity.groupby("layer")
        },
    }
    settings = AblationSettings(LAYERS, random_draws=2, cumulative_fractions=(0.0, 0.5, 1.0), batch_size=10)
    strata = layer_strata(network, images, preferred_frequencies_from_table(tuning), LAYERS)
    half, comparisons = half_ablation(network, images, labels, scores, settings, IDENTIFIERS, strata=strata)
    curves, areas = cumulative_ablation(network, images, labels, scores, settings, IDENTIFIERS)
    invariance = shift_invariance(
        network,
        images,
        gosi,
        InvarianceSettings(
            measured_layers=("conv5", "fc1"), ablated_layers=LAYERS, shifts=(1, 2), random_draws=1
        ),
        IDENTIFIERS,
        strata=strata,
    )
    metrics = pd.DataFrame(
        [
            {**{k: IDENTIFIERS[k] for k in ("model", "dataset", "label_corruption", "seed")}, "epoch": epoch}
            | {column: 0.5 for column in METRICS_COLUMNS[5:]}
            for epoch in range(3)
        ]
    )
    return {
        "tuning": tuning,
        "class_selectivity": class_selectivity,
        "half_ablation": half,
        "half_ablation_comparisons": comparisons,
        "cumulative_ablation": curves,
        "cumulative_ablation_auc": areas,
        "shift_invariance": invariance,
        "metrics": metrics,
        "selectivity_summary": selectivity_summary(tuning, metrics),
    }


def written(table: pd.DataFrame, tmp_path: Path, name: str = "table.csv") -> Path:
    path = tmp_path / name
    save_table(table, path)
    return path


@pytest.mark.parametrize(
    "kind",
    [
        "tuning",
        "class_selectivity",
        "half_ablation",
        "half_ablation_comparisons",
        "cumulative_ablation",
        "cumulative_ablation_auc",
        "shift_invariance",
        "metrics",
        "selectivity_summary",
    ],
)
def test_what_the_package_writes_passes_after_a_round_trip_through_csv(produced, tmp_path, kind):
    table = read_table(written(produced[kind], tmp_path), kind)
    assert list(table.columns) == list(produced[kind].columns)
    assert len(table) == len(produced[kind])


def test_schemas_list_the_columns_the_code_writes_in_its_order():
    identifiers = list(CHECKPOINT_COLUMNS)
    assert SCHEMAS["tuning"].column_names == identifiers + list(TUNING_COLUMNS) + tuning_feature_columns(
        FEATURES
    )
    assert SCHEMAS["metrics"].column_names == list(METRICS_COLUMNS)
    assert SCHEMAS["claims"].column_names == list(CLAIM_COLUMNS)
    assert SCHEMAS["depth_profiles"].column_names == list(DEPTH_PROFILE_COLUMNS)
    assert SCHEMAS["selectivity_summary"].column_names == identifiers + [
        "layer",
        "layer_index",
        "stimulus_set",
        *SUMMARY_VALUE_COLUMNS,
        *METRIC_COLUMNS,
    ]
    assert tables.STIMULUS_SETS == STIMULUS_SETS and tables.RANKINGS == RANKINGS
    assert tables.HALF_ABLATION_CONDITIONS == CONDITIONS and tables.DIRECTIONS == DIRECTIONS
    assert tables.CLAIM_IDS == CLAIM_IDS and tables.VERDICTS == (*VERDICTS, NOT_APPLICABLE)


def test_a_user_networks_tables_pass_with_their_own_layers_and_must_agree_across_stimulus_sets(produced):
    tuning = produced["tuning"].assign(model="mine", checkpoint="published", epoch=np.nan)
    tuning = tuning[tuning["layer"].isin(["conv2", "fc1"])]
    validate_table(tuning, "tuning")  # any layers, as long as every set of units is complete
    short = tuning.drop(
        tuning.index[(tuning["stimulus_set"] == "shuffled") & (tuning["layer"] == "fc1")][-1:]
    )
    with pytest.raises(
        TableError,
        match=r"layer fc1 has 511 unit rows at .* shuffled, expected units 0\.\.511 "
        r"\(512 units in its other checkpoints or stimulus sets\): units 511 missing",
    ):
        validate_table(short, "tuning", "mine.csv")


def test_the_architecture_says_how_many_units_and_which_layer_index(produced):
    half = produced["half_ablation"].copy()
    half.loc[half["layer"] == "conv2", "n_units"] = 31
    with pytest.raises(TableError, match="column n_units is 31 for layer conv2 of cnn7 \\(expected 32\\)"):
        validate_table(half, "half_ablation", "half.csv")
    tuning = produced["tuning"].copy()
    tuning.loc[tuning["layer"] == "conv3", "layer_index"] = 7
    with pytest.raises(
        TableError, match=r"layer conv3 of cnn7 has layer_index \[7\] \(expected 2, its position"
    ):
        validate_table(tuning, "tuning", "tuning.csv")
    tuning = produced["tuning"].copy()
    tuning.loc[tuning["layer"] == "conv3", "layer"] = "conv9"
    with pytest.raises(TableError, match="column layer names conv9, not a layer of cnn7"):
        validate_table(tuning, "tuning", "tuning.csv")
    tuning = produced["tuning"]
    with pytest.raises(TableError, match=r"lacks layer fc1 at .* gratings \(expected every layer of cnn7: "):
        validate_table(tuning[tuning["layer"] != "fc1"], "tuning", "tuning.csv")


@pytest.mark.parametrize(
    "kind,column,value,message",
    [
        (
            "tuning",
            "gosi",
            1.5,
            r"column gosi has 1\.5, outside \[0, 1\], in 1 row at layer conv2 unit 3 \(first: "
            r"cnn7/synthetic/corruption0\.00/seed0, checkpoint best \(epoch 2\), gratings\)$",
        ),
        ("tuning", "osi", "high", r"column osi must hold numbers, found 'high' at layer conv2 unit 3"),
        (
            "tuning",
            "preferred_orientation_deg",
            180.0,
            r"column preferred_orientation_deg has 180, outside \[0, 180\)",
        ),
        ("tuning", "dead", "maybe", r"column dead must be true or false, found 'maybe'"),
        (
            "tuning",
            "stimulus_set",
            "noise",
            r"column stimulus_set has the value 'noise' \(allowed: gratings, shuffled\)",
        ),
        ("tuning", "unit", 3.5, r"column unit must hold whole numbers, found 3\.5"),
        (
            "metrics",
            "test_accuracy",
            np.inf,
            r"column test_accuracy has infinite values \(allowed: finite only\) on line 3",
        ),
        (
            "half_ablation",
            "accuracy",
            -0.1,
            r"column accuracy has -0\.1, outside \[0, 1\], in 1 row on line 3",
        ),
        (
            "shift_invariance",
            "normalised_invariance_mean",
            np.nan,
            r"column normalised_invariance_mean has 1% NaN \(1 of 72 rows; allowed: only where "
            r"other_correlation_mean is 1\.0\) on line 3",
        ),
        (
            "class_selectivity",
            "class_selectivity_index",
            np.nan,
            r"column class_selectivity_index has 0\.\d+% NaN",
        ),
    ],
)
def test_a_bad_value_is_named_with_its_column_and_place(produced, tmp_path, kind, column, value, message):
    table = produced[kind].copy()
    if column in ("osi", "dead", "stimulus_set"):
        table[column] = table[column].astype(object)
    if column == "unit":
        table[column] = table[column].astype(float)
    row = table.index[(table["layer"] == "conv2") & (table["unit"] == 3)][0] if "unit" in table.columns else 1
    table.loc[row, column] = value
    path = written(table, tmp_path)
    with pytest.raises(TableError, match=rf"^{path}: {message}"):
        read_table(path, kind)


def test_nan_is_allowed_only_where_the_schema_says(produced):
    tuning = produced["tuning"].copy()
    dead_unit = (tuning["layer"] == "conv1") & (tuning["unit"] == 0)
    tuning.loc[dead_unit, ["osi", "gosi", "peak_response"]] = 0.0
    tuning.loc[dead_unit, "dead"] = True
    tuning.loc[dead_unit, ["preferred_orientation_deg", "preferred_period_px", "orientation_consistency"]] = (
        np.nan
    )
    tuning["preferred_spatial_frequency"] = tuning["preferred_spatial_frequency"].astype(float)
    tuning.loc[dead_unit, "preferred_spatial_frequency"] = np.nan
    validate_table(tuning, "tuning")  # a dead unit prefers nothing
    tuning.loc[dead_unit, "dead"] = False
    with pytest.raises(
        TableError, match=r"column preferred_orientation_deg has .*allowed: only where dead is true"
    ):
        validate_table(tuning, "tuning")


@pytest.mark.parametrize("kind", ["selectivity_summary", "feature_summary"])
def test_summaries_allow_empty_metrics_only_for_a_given_networks_checkpoints(produced, kind):
    """A given network's published weights and its untrained constructor have no training history."""
    summary = produced["selectivity_summary"]
    if kind == "feature_summary":
        summary = feature_summary(
            produced["tuning"], produced["metrics"], {"orientation": 0.2}, ["orientation"]
        )
    metric = "test_accuracy"
    for checkpoint in ("published", "untrained"):
        given = summary.copy()
        given["checkpoint"], given[metric] = checkpoint, np.nan
        given["epoch"] = np.nan if checkpoint == "published" else 0
        validate_table(given, kind)
    trained = summary.copy()
    trained[metric] = np.nan
    with pytest.raises(
        TableError, match=rf"column {metric} has .*allowed: only where checkpoint is published"
    ):
        validate_table(trained, kind)


def test_rows_must_be_unique_and_obey_the_kinds_rules(produced):
    tuning = produced["tuning"]
    with pytest.raises(
        TableError, match=r"2 rows repeat a key .* e\.g\. checkpoint best, epoch 2, layer conv1, unit 0"
    ):
        validate_table(pd.concat([tuning, tuning.iloc[:1]], ignore_index=True), "tuning")
    broken = tuning.copy()
    broken.loc[5, "dead"] = True
    with pytest.raises(
        TableError,
        match="the rule 'a unit is dead exactly when its peak_response is 0' is broken in 1 row at layer conv1 unit 5",
    ):
        validate_table(broken, "tuning")
    metrics = produced["metrics"]
    with pytest.raises(
        TableError, match=r"seed0 lacks the metrics of epochs 1 \(expected every epoch 0\.\.2\)"
    ):
        validate_table(metrics[metrics["epoch"] != 1], "metrics")


def test_a_file_that_is_not_a_table_is_named(tmp_path):
    path = tmp_path / "tuning.csv"
    with pytest.raises(TableError, match=rf"^{path} does not exist"):
        read_table(path, "tuning")
    path.write_text("")
    with pytest.raises(TableError, match=rf"^{path} is empty \(no header\)"):
        read_table(path, "tuning")
    path.write_text(",".join(SCHEMAS["tuning"].column_names) + "\n")
    with pytest.raises(TableError, match=rf"^{path} has no rows \(header only\)"):
        read_table(path, "tuning")
    with pytest.raises(ValueError, match="unknown table kind 'tunings'"):
        read_table(path, "tunings")


def test_rows_must_be_of_the_network_and_checkpoint_the_path_and_the_job_name(produced, tmp_path):
    folder = tmp_path / "results" / "tuning" / NETWORK_PATH
    path = written(produced["tuning"], folder, "best.csv")
    read_table(path, "tuning", checkpoint_identity(NETWORK_PATH, "best"))
    epoch_file = written(produced["tuning"], folder, "epoch2.csv")
    with pytest.raises(
        TableError,
        match=rf"^{epoch_file} holds rows of .*checkpoint best \(epoch 2\), but its path "
        r"names cnn7/synthetic/corruption0\.00/seed0, checkpoint epoch \(epoch 2\)",
    ):
        read_table(epoch_file, "tuning")
    with pytest.raises(TableError, match=r"but this job expects cnn7/synthetic/corruption0\.20/seed0"):
        read_table(path, "tuning", checkpoint_identity("cnn7/synthetic/corruption0.20/seed0", "best"))


def test_paths_and_identities():
    assert network_identity(NETWORK_PATH) == {
        "model": "cnn7",
        "dataset": "synthetic",
        "label_corruption": 0.0,
        "seed": 0,
    }
    assert checkpoint_identity(NETWORK_PATH, "epoch12")["epoch"] == 12
    assert checkpoint_identity(NETWORK_PATH, "best") | {} == {
        **network_identity(NETWORK_PATH),
        "checkpoint": "best",
        "epoch": None,
    }
    assert identity_from_path(f"results/networks/{NETWORK_PATH}/checkpoints/epoch3.pt")["epoch"] == 3
    assert identity_from_path(f"results/causal/{NETWORK_PATH}/half_ablation.csv") == network_identity(
        NETWORK_PATH
    )
    assert identity_from_path("results/aggregate/tuning.csv") is None
    with pytest.raises(ValueError, match="does not name a network"):
        network_identity("cnn7/synthetic/seed0")
    actual = {
        **network_identity(NETWORK_PATH),
        "label_corruption": 0.2000001,
        "checkpoint": "best",
        "epoch": 4,
    }
    assert (
        identity_differences(actual, checkpoint_identity("cnn7/synthetic/corruption0.20/seed0", "best")) == []
    )
    assert identity_differences(
        actual, checkpoint_identity("cnn7/synthetic/corruption0.20/seed1", "epoch4")
    ) == [
        "seed",
        "checkpoint",
    ]
    assert describe_identity(actual) == "cnn7/synthetic/corruption0.20/seed0, checkpoint best (epoch 4)"


def test_the_architecture_documents_table_columns_are_generated_from_the_schemas():
    document = (REPO / "docs" / "architecture.md").read_text()
    assert tables.document_block() in document, (
        "docs/architecture.md's table columns differ from selectivity.tables.SCHEMAS; "
        "regenerate them: PYTHONPATH=src python -m selectivity.tables docs/architecture.md"
    )

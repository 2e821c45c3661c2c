"""Claim C7 (docs/method.md §6.3): networks trained with less lower-layer selectivity generalize worse.

Synthetic summaries with known effects of the regularisation coefficient check the verdicts: the
per-seed slopes decide by the sign test, the selectivity slope makes the claim specific, the
comparisons with coefficient 0 use their margins, too few seeds decide nothing, and the rows are a
valid claims table. Regularised variants never become models of C1-C6."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from selectivity.claims.evaluation import model_dataset_pairs
from selectivity.claims.regularisation import (
    evaluate_regularisation_claims,
    least_squares_slope,
    per_seed_slopes,
    regularised_networks,
)
from selectivity.claims.table import ClaimSettings
from selectivity.claims.verdicts import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    SUPPORTED_NOT_SPECIFIC,
    TOO_FEW,
)
from selectivity.identity import regularised_model_name
from selectivity.regularisation import RegularisationStudy
from selectivity.tables import read_table

LOWER = ("conv1", "conv2")
COEFFICIENTS = (-1.0, 1.0)


def study(feature="orientation", coefficients=COEFFICIENTS) -> RegularisationStudy:
    return RegularisationStudy(
        feature,
        coefficients,
        {"cnn7": LOWER},
        {"cnn7": tuple(regularised_model_name("cnn7", feature, c) for c in coefficients)},
    )


def settings(**changes) -> ClaimSettings:
    return ClaimSettings(regularisation=changes.pop("regularisation", study()), **changes)


def summary(
    accuracy_slope=-0.02,
    loss_slope=0.05,
    selectivity_slope=-0.05,
    seeds=8,
    feature="orientation",
    noise=0.002,
) -> pd.DataFrame:
    """A selectivity summary (orientation) or feature summary (other features) of cnn7 and its variants:
    at the best checkpoint, each value linear in the coefficient plus a seed's own offset and noise."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(seeds):
        offset = rng.normal(0, 0.02)
        for coefficient in (0.0, *COEFFICIENTS):
            model = regularised_model_name("cnn7", feature, coefficient)
            accuracy = 0.7 + offset + accuracy_slope * coefficient + rng.normal(0, noise)
            loss = 1.0 - offset + loss_slope * coefficient + rng.normal(0, noise)
            for layer_index, layer in enumerate(("conv1", "conv2", "conv3")):
                regularised = layer in LOWER
                gratings = (
                    0.3 + (selectivity_slope * coefficient if regularised else 0.0) + rng.normal(0, noise)
                )
                for stimulus_set, value in (("gratings", gratings), ("shuffled", 0.1 + rng.normal(0, noise))):
                    row = dict(
                        model=model,
                        dataset="synthetic",
                        label_corruption=0.0,
                        seed=seed,
                        checkpoint="best",
                        epoch=5,
                        layer=layer,
                        layer_index=layer_index,
                        stimulus_set=stimulus_set,
                        test_accuracy=accuracy,
                        test_loss=loss,
                    )
                    if feature == "orientation":
                        row["mean_gosi"] = value
                    else:
                        row.update(feature=feature, mean_index=value)
                    rows.append(row)
    return pd.DataFrame(rows)


def c7(
    table: pd.DataFrame, claim_settings: ClaimSettings | None = None, feature="orientation"
) -> pd.DataFrame:
    claim_settings = claim_settings or settings()
    if feature == "orientation":
        records = evaluate_regularisation_claims(table, None, claim_settings)
    else:
        records = evaluate_regularisation_claims(pd.DataFrame(), table, claim_settings)
    return pd.DataFrame(records).set_index("test")


def test_generalization_falling_with_the_coefficient_and_selectivity_moved_supports_c7():
    rows = c7(summary())
    assert rows.loc["claim", "verdict"] == SUPPORTED and bool(rows.loc["claim", "headline"])
    assert rows.loc["accuracy_slope", "verdict"] == SUPPORTED
    assert rows.loc["accuracy_slope", "effect_size"] == pytest.approx(-0.02, abs=0.005)
    assert rows.loc["accuracy_slope", "claimed_side"] == "below"
    assert (
        rows.loc["loss_slope", "verdict"] == SUPPORTED and rows.loc["loss_slope", "claimed_side"] == "above"
    )
    assert rows.loc["selectivity_slope", "control"] == "specificity"
    assert rows.loc["selectivity_slope", "verdict"] == SUPPORTED
    # 8 seeds x 3 coefficients: the values are seeds, the networks all 24
    assert (rows["n_networks"] == 24).all() and (rows["n_seeds"] == 8).all()
    assert rows.loc["accuracy_slope", "layer"] == "lower" and set(rows["feature"]) == {"orientation"}
    # the comparisons with 0 decide nothing: worse at +1, no worse at -1 (within the margins)
    assert set(rows.loc[[t for t in rows.index if "_minus_0" in t], "control"]) == {"comparison"}
    assert rows.loc["accuracy_at_+1_minus_0", "verdict"] == SUPPORTED
    assert rows.loc["accuracy_at_-1_minus_0", "verdict"] == SUPPORTED
    assert rows.loc["accuracy_at_-1_minus_0", "null_value"] == pytest.approx(-0.01)
    assert rows.loc["loss_at_-1_minus_0", "null_value"] == pytest.approx(0.1)
    assert "in most seeds" in rows.loc["claim", "reading"]


def test_generalization_rising_with_the_coefficient_does_not_support_c7():
    rows = c7(summary(accuracy_slope=0.02, loss_slope=-0.05))
    assert rows.loc["claim", "verdict"] == NOT_SUPPORTED
    assert rows.loc["accuracy_at_+1_minus_0", "verdict"] == NOT_SUPPORTED


def test_without_a_shown_change_of_selectivity_the_claim_is_undecided_and_with_the_opposite_not_specific():
    assert c7(summary(selectivity_slope=0.0, noise=0.0)).loc["claim", "verdict"] == INCONCLUSIVE
    rows = c7(summary(selectivity_slope=0.05))
    assert rows.loc["selectivity_slope", "verdict"] == NOT_SUPPORTED
    assert rows.loc["claim", "verdict"] == SUPPORTED_NOT_SPECIFIC
    assert "not shown to be about" in rows.loc["claim", "reading"]


def test_three_seeds_are_too_few_and_networks_needed_count_every_coefficients_network():
    rows = c7(summary(seeds=3, noise=0.01))
    assert rows.loc["accuracy_slope", "verdict"] == TOO_FEW
    needed = c7(summary(noise=0.01)).loc["accuracy_slope"]
    assert needed["networks_needed"] % 3 == 0 and "seeds x 3 coefficients" in needed["power_note"]


def test_c7_of_another_feature_reads_the_feature_summary():
    table = summary(feature="spatial_frequency")
    rows = c7(table, settings(regularisation=study("spatial_frequency")), feature="spatial_frequency")
    assert rows.loc["claim", "verdict"] == SUPPORTED and set(rows["feature"]) == {"spatial_frequency"}
    assert "SF selectivity" in rows.loc["selectivity_slope", "statistic"]


def test_the_rows_are_a_valid_claims_table(tmp_path):
    records = evaluate_regularisation_claims(summary(), None, settings())
    path = tmp_path / "claims.csv"
    from selectivity.claims.table import CLAIM_COLUMNS

    pd.DataFrame(records, columns=list(CLAIM_COLUMNS)).to_csv(path, index=False)
    table = read_table(path, "claims")
    assert set(table["claim"]) == {"C7"} and set(table["model"]) == {"cnn7"}
    assert table["headline"].sum() == 1


def test_per_seed_slopes_and_networks():
    table = summary(noise=0.0)
    networks = regularised_networks(table, "cnn7", "synthetic", study(), settings())
    assert len(networks) == 24 and sorted(networks["coefficient"].unique()) == [-1.0, 0.0, 1.0]
    # gratings minus shuffled, mean over conv1 and conv2: 0.2 - 0.05 c
    np.testing.assert_allclose(networks["selectivity"], 0.2 - 0.05 * networks["coefficient"], atol=1e-12)
    slopes = per_seed_slopes(networks, "selectivity", "cnn7")
    np.testing.assert_allclose(slopes.to_numpy(), -0.05, atol=1e-12)
    assert least_squares_slope(np.array([-1.0, 0.0, 1.0]), np.array([0.3, 0.3, 0.3])) == 0.0
    assert least_squares_slope(np.array([-1.0, 0.0, 1.0]), np.array([0.1 + 0.2, 0.3, 0.3])) == 0.0


def test_regularised_variants_are_no_models_of_the_paper_claims():
    table = summary()
    assert model_dataset_pairs({"summary": table}) == [("cnn7", "synthetic")]
    assert evaluate_regularisation_claims(table, None, ClaimSettings()) == []

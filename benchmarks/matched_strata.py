"""How often a matched-random draw collapses onto the top half it is matched to.

The matched control of an ablation (docs/method.md §4.2) draws, from every stratum of a layer,
as many units as the top half has there. Strata that are too fine hold only top units and the
matched draw becomes the top set itself, so "top minus matched" would test nothing. For real
checkpoints this script measures, per feature ranking and layer, over many draws of the matched
generator: the fraction of draws that *equal* the top set, and the mean fraction of a draw's
units that are top units (a random half overlaps it by about 0.5). It compares the strata of
:mod:`selectivity.causal.feature_matching` with several mean-output bin counts, and reports the
orientation ranking's own control (:mod:`selectivity.causal.matching`) for reference::

    python benchmarks/matched_strata.py --checkpoints results/networks/cnn7/cifar10/corruption0.00/seed*/checkpoints/best.pt \
        --test-set results/data/cifar10_test.npz --images 1000 --draws 200
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
import torch

from selectivity.causal.ablation import rank_units
from selectivity.causal.feature_matching import INDEX_BINS, feature_strata, overlap_with_top
from selectivity.causal.feature_tests import feature_scores_from_table
from selectivity.causal.matching import matched_generator, matched_units, unit_mean_outputs, unit_strata
from selectivity.data.dataset import load_test_images
from selectivity.networks.checkpoints import checkpoint_identifiers, load_checkpoint
from selectivity.tuning.analysis import TuningSettings, analyse_tuning
from selectivity.tuning.features import FEATURES, RANKED_FEATURES


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", nargs="+", required=True, help="checkpoint files (e.g. best.pt)")
    parser.add_argument("--test-set", required=True, help="a test-set file (results/data/<dataset>_test.npz)")
    parser.add_argument("--images", type=int, default=1000, help="test images for the mean outputs")
    parser.add_argument("--draws", type=int, default=200, help="matched draws per layer and ranking")
    parser.add_argument("--activation-bins", default="1,2,3", help="mean-output bin counts to compare")
    parser.add_argument("--fraction", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args()


def draw_statistics(top: np.ndarray, strata: np.ndarray, draws: int, layer_index: int) -> tuple[float, float]:
    """(fraction of draws equal to the top set, mean overlap with it) over ``draws`` matched draws."""
    generator = matched_generator(0, layer_index)
    equal, overlaps = 0, []
    top_set = set(top.tolist())
    for _ in range(draws):
        drawn = matched_units(top, strata, generator)
        equal += set(drawn.tolist()) == top_set
        overlaps.append(overlap_with_top(drawn, top))
    return equal / draws, float(np.mean(overlaps))


def main() -> None:
    args = arguments()
    torch.set_num_threads(args.threads)
    bins = [int(b) for b in args.activation_bins.split(",")]
    images, _, _ = load_test_images(args.test_set, args.images)
    results: dict[tuple[str, str, str], list[tuple[float, float]]] = defaultdict(list)
    for path in args.checkpoints:
        network = load_checkpoint(path)
        tuning = analyse_tuning(
            network, TuningSettings(features=FEATURES), checkpoint_identifiers(network, "best")
        ).table
        layers = list(network.model.layer_names)
        means = unit_mean_outputs(network, images, layers)
        gratings = tuning[tuning["stimulus_set"] == "gratings"]
        for layer in layers:
            layer_index = network.model.layer_index(layer)
            rows = gratings[gratings["layer"] == layer].sort_values("unit")
            gosi = rows["gosi"].to_numpy(float)
            top = rank_units(gosi, args.fraction, "top", None)
            legacy = unit_strata(rows["preferred_spatial_frequency"].to_numpy(float), means[layer])
            results[("orientation (preferred-SF half x output tercile)", "-", layer)].append(
                draw_statistics(top, legacy, args.draws, layer_index)
            )
        for feature in RANKED_FEATURES:
            scores = feature_scores_from_table(tuning, feature, FEATURES)
            for layer in layers:
                layer_index = network.model.layer_index(layer)
                top = rank_units(scores.ranking[layer], args.fraction, "top", None)
                for activation_bins in bins:
                    strata = feature_strata(
                        scores.covariates[layer], means[layer], INDEX_BINS, activation_bins
                    )
                    results[(feature, str(activation_bins), layer)].append(
                        draw_statistics(top, strata, args.draws, layer_index)
                    )
        print(f"measured {path}", flush=True)
    print(
        f"\n{len(args.checkpoints)} checkpoints, {args.draws} matched draws per layer, {len(images)} images; "
        "P(equal) = fraction of draws equal to the top set, overlap = mean fraction of a draw's units in it "
        "(mean over checkpoints; a random half: about 0.5)"
    )
    print(f"{'ranking':<50} {'output bins':>11} {'layer':>7} {'P(equal)':>9} {'overlap':>8}")
    for (ranking, activation_bins, layer), values in results.items():
        equal, overlap = np.mean(values, axis=0)
        print(f"{ranking:<50} {activation_bins:>11} {layer:>7} {equal:>9.3f} {overlap:>8.3f}")


if __name__ == "__main__":
    main()

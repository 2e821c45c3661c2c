"""Ablation: how much test performance depends on a layer's most and least selective units.

docs/method.md §4. A unit is ablated by zeroing its whole channel (conv) or its value (fc) at
the stage's post-BN output through a keep mask (:func:`selectivity.networks.models.apply_keep_mask`);
checkpoints are never edited. One layer is ablated at a time.

Two protocols:

* **half ablation** [A, extended]: per layer, the top 50 % of units by a score (gOSI, or the
  Morcos class-selectivity index) vs the bottom 50 % vs random 50 % (several seeded draws).
  The metric is the increase of test cross-entropy per image (ablated minus intact), mean and
  SEM over images, plus accuracy; top is compared with the controls paired over images.
* **cumulative ablation** [D] (Morcos style): test loss and accuracy as the ablated fraction
  grows from 0 to 1, units taken in order of descending or ascending score or in a random
  order, and the area under each curve.

Efficiency: ablating layer L changes nothing upstream of L. :func:`per_image_losses` computes
the output of L once per image batch and evaluates every ablation condition of L from it in
batched passes (conditions x images rows); conditions with identical masks are evaluated
once. :func:`naive_per_image_losses` is the plain reference (a full forward per condition).

Design choices [D] (docs/method.md §4):

* units ablated = ``round(fraction * units)``, rounding halves up (:func:`units_to_ablate`);
* unit orders are a stable sort by (score, unit index); the descending order is the exact
  reverse of the ascending one, so among equal scores "top" takes the higher unit index
  first and "bottom" the lower, and top and bottom halves never overlap;
* random draws of a layer come from :func:`layer_generator` (settings seed, layer index):
  draw d is the d-th random permutation of the units; the random half of draw d is its first
  half and the random cumulative curve of draw d ablates along the same permutation. Both
  rankings share the same random draws (the random control does not depend on a score);
* curve areas are trapezoids over the nominal ``fraction_ablated`` (the realised fraction is
  ``n_ablated / n_units``, e.g. 3 of 32 units at 0.1);
* paired comparisons use the two-sided paired t-test and the Wilcoxon signed-rank test
  (zero differences dropped, SciPy's default); when every difference is exactly zero the
  conditions are identical and both p-values are 1 with t = 0.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from scipy import stats
from tqdm.auto import tqdm

from selectivity.networks.loaded import LoadedNetwork
from selectivity.causal.matching import matched_draws
from selectivity.statistics import mean_and_sem
from selectivity.causal.unit_counts import units_to_ablate

logger = logging.getLogger(__name__)

RANKINGS = ("gosi", "class_selectivity")
CONDITIONS = ("top", "bottom", "random", "matched")
#: The author's probability clip (Keras' epsilon): each image's loss is at most -ln 1e-7.
PROBABILITY_CLIP = 1e-7
DEFAULT_CUMULATIVE_FRACTIONS = tuple(i / 10 for i in range(11))
# Rows (conditions x images) per downstream pass on a GPU: about 0.5 GB for cnn7's conv1 output.
GPU_ROWS_PER_PASS = 4096


def require_evaluation_mode(network: LoadedNetwork) -> None:
    """Refuse a model in training mode: its BatchNorm would use batch statistics and drift."""
    if network.model.training:
        raise ValueError(
            f"{network.model.name} is in training mode; BatchNorm would use batch statistics. "
            "Call network.model.eval() first (load_checkpoint already does)."
        )


def check_images_and_labels(images: torch.Tensor, labels: torch.Tensor | None = None) -> None:
    """Raise a ValueError naming the problem if images are not float NCHW (with one label each)."""
    if not torch.is_floating_point(images) or images.dim() != 4:
        raise ValueError(
            f"images must be float (N, C, H, W) in [0, 1], got {images.dtype} {tuple(images.shape)}"
        )
    if len(images) == 0:
        raise ValueError("no images given")
    if labels is not None and (labels.dim() != 1 or len(labels) != len(images)):
        raise ValueError(
            f"labels must be a vector with one label per image ({len(images)}), got {tuple(labels.shape)}"
        )


# ---- which units ---------------------------------------------------------------------


@dataclass(frozen=True)
class AblationSettings:
    """What the ablation sweeps ablate; ``batch_size`` changes speed only, never results."""

    layers: tuple[str, ...]
    fraction: float = 0.5
    random_draws: int = 5
    cumulative_fractions: tuple[float, ...] = DEFAULT_CUMULATIVE_FRACTIONS
    seed: int = 0
    batch_size: int = 500

    def __post_init__(self):
        # Workflow params arrive as lists; store tuples so the settings stay hashable.
        object.__setattr__(self, "layers", tuple(self.layers))
        fractions = tuple(float(f) for f in self.cumulative_fractions)
        object.__setattr__(self, "cumulative_fractions", fractions)
        if not self.layers:
            raise ValueError("ablation settings: no layers given")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"ablation fraction must be in (0, 1], got {self.fraction}")
        if self.random_draws < 1:
            raise ValueError(f"random_draws must be at least 1, got {self.random_draws}")
        if (
            len(fractions) < 2
            or any(not 0 <= f <= 1 for f in fractions)
            or list(fractions) != sorted(set(fractions))
        ):
            raise ValueError(
                f"cumulative_fractions must be at least two distinct increasing values in [0, 1], got {fractions}"
            )
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")


def layer_generator(seed: int, layer_index: int) -> np.random.Generator:
    """The generator of a layer's random ablation draws: independent per (seed, layer)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, layer_index)))


def unit_order(scores: np.ndarray, descending: bool) -> np.ndarray:
    """Unit indices sorted by score; ties by unit index, descending = reverse of ascending."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"unit scores must be one value per unit, got shape {scores.shape}")
    if np.isnan(scores).any():
        raise ValueError(f"unit scores contain NaN (unit {int(np.flatnonzero(np.isnan(scores))[0])})")
    ascending = np.argsort(scores, kind="stable")
    return ascending[::-1].copy() if descending else ascending


def rank_units(
    scores: np.ndarray, fraction: float, condition: str, generator: np.random.Generator | None
) -> np.ndarray:
    """Indices of the units to ablate: the ``fraction`` with the highest (top) or lowest
    (bottom) scores, or a random subset (the first part of ``generator.permutation``).

    The order of the result is the ablation order (most selective first for top).
    """
    units = len(scores)
    count = units_to_ablate(fraction, units)
    if condition == "top":
        return unit_order(scores, descending=True)[:count]
    if condition == "bottom":
        return unit_order(scores, descending=False)[:count]
    if condition == "random":
        if generator is None:
            raise ValueError("random ablation needs a numpy Generator (see layer_generator)")
        return generator.permutation(units)[:count]
    raise ValueError(f"ablation condition must be one of {CONDITIONS}, got {condition!r}")


def keep_mask(units: int, ablated: Sequence[int] | np.ndarray) -> torch.Tensor:
    """A (units,) float keep mask: 0 for the ablated units, 1 for the others."""
    ablated = np.asarray(ablated, dtype=np.int64)
    if ablated.size and (ablated.min() < 0 or ablated.max() >= units):
        raise ValueError(
            f"ablated unit indices must be in 0..{units - 1}, got {ablated.min()}..{ablated.max()}"
        )
    mask = torch.ones(units, dtype=torch.float32)
    mask[torch.from_numpy(ablated)] = 0.0
    return mask


def unit_scores_from_tables(
    tuning: pd.DataFrame, class_selectivity: pd.DataFrame | None
) -> dict[str, dict[str, np.ndarray]]:
    """Per-unit ranking scores from one checkpoint's tables.

    ``{"gosi": {layer: gOSI of the real gratings}, "class_selectivity": {layer: index}}``;
    the second entry only when a class-selectivity table is given. Arrays are indexed by unit.
    """
    scores = {"gosi": _scores_by_layer(tuning[tuning["stimulus_set"] == "gratings"], "gosi", "tuning")}
    if class_selectivity is not None:
        scores["class_selectivity"] = _scores_by_layer(
            class_selectivity, "class_selectivity_index", "class selectivity"
        )
    return scores


def _scores_by_layer(table: pd.DataFrame, column: str, what: str) -> dict[str, np.ndarray]:
    if table.empty:
        raise ValueError(f"the {what} table has no rows to take {column} from")
    scores = {}
    for layer, rows in table.groupby("layer", sort=False):
        units = rows["unit"].to_numpy()
        if len(units) != len(set(units)) or set(units) != set(range(len(units))):
            raise ValueError(
                f"the {what} table must hold each unit 0..n-1 of layer {layer} exactly once "
                f"(one checkpoint); got {len(units)} rows with units {sorted(set(units))[:5]}..."
            )
        scores[layer] = rows.sort_values("unit")[column].to_numpy(dtype=np.float64)
    return scores


# ---- per-image losses ----------------------------------------------------------------


def _stack_masks(network: LoadedNetwork, layer: str, keep_masks: Sequence[torch.Tensor]) -> torch.Tensor:
    if len(keep_masks) == 0:
        raise ValueError(f"no keep masks given for layer {layer}")
    masks = torch.stack([torch.as_tensor(m, dtype=torch.float32).cpu() for m in keep_masks])
    units = network.model.units(layer)
    if masks.dim() != 2 or masks.shape[1] != units:
        raise ValueError(
            f"keep masks for {layer} must each have {units} entries, got shape {tuple(masks.shape)}"
        )
    return masks


def image_batches(count: int, batch_size: int, progress: bool, description: str):
    """Slices over ``count`` images, ``batch_size`` at a time, with an optional progress bar."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    starts = range(0, count, batch_size)
    for start in tqdm(starts, desc=description, disable=not progress, leave=False):
        yield slice(start, min(start + batch_size, count))


def masked_copies(output: torch.Tensor, keep_masks: torch.Tensor) -> torch.Tensor:
    """A stage output (B, units, ...) once per keep mask (M, units), each copy ablated by its
    mask: (M * B, units, ...), condition-major. The product of apply_keep_mask, broadcast so
    the repeated batch is materialised only once."""
    if keep_masks.dim() != 2 or keep_masks.shape[1] != output.shape[1]:
        raise ValueError(f"keep masks must be (conditions, {output.shape[1]}), got {tuple(keep_masks.shape)}")
    keep = keep_masks.to(dtype=output.dtype, device=output.device)
    keep = keep.view(*keep.shape[:1], 1, keep.shape[1], *[1] * (output.dim() - 2))
    return (output.unsqueeze(0) * keep).flatten(0, 1)


def per_image_losses(
    network: LoadedNetwork,
    images: torch.Tensor,
    labels: torch.Tensor,
    layer: str | None,
    keep_masks: Sequence[torch.Tensor],
    batch_size: int = 500,
    *,
    max_rows: int | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-entropy and correctness of every image under every keep mask of ``layer``.

    ``layer=None`` evaluates the intact network (``keep_masks`` must then be empty) and
    returns one condition. Per image batch, the output of ``layer`` is computed once; the
    conditions are evaluated from it ``max_rows // batch`` at a time by repeating the batch
    with one mask per row. Identical masks are evaluated once. ``max_rows=None`` picks
    :data:`GPU_ROWS_PER_PASS` on a GPU (fewer, larger kernels) and one condition per pass on
    a CPU (where large repeated batches only cost memory traffic).

    Returns float64 losses and bool correctness, both shaped (n_conditions, n_images).
    """
    require_evaluation_mode(network)
    check_images_and_labels(images, labels)
    model, device = network.model, network.device
    if layer is None:
        if len(keep_masks):
            raise ValueError("keep masks were given without a layer to apply them to")
        unique_masks, inverse = None, torch.zeros(1, dtype=torch.long)
    else:
        unique_masks, inverse = torch.unique(
            _stack_masks(network, layer, keep_masks), dim=0, return_inverse=True
        )
        unique_masks = unique_masks.to(device)
    conditions = 1 if unique_masks is None else len(unique_masks)
    rows_per_pass = max_rows or (GPU_ROWS_PER_PASS if device.type == "cuda" else 1)
    # Results stay on the device until the end: no host synchronisation inside the loops.
    losses = torch.empty(conditions, len(images), dtype=torch.float32, device=device)
    correct = torch.empty(conditions, len(images), dtype=torch.bool, device=device)
    with torch.no_grad():
        for batch in image_batches(len(images), batch_size, progress, f"losses {layer or 'intact'}"):
            inputs = network.prepare_inputs(images[batch].to(device))
            targets = labels[batch].to(device)
            if unique_masks is None:
                losses[:, batch], correct[:, batch] = _losses_and_correct(model(inputs), targets, 1)
                continue
            upstream = model.run(inputs, record_outputs=[layer], stop_after=layer).outputs[layer]
            per_pass = max(1, rows_per_pass // len(inputs))
            for first in range(0, conditions, per_pass):
                masks = unique_masks[first : first + per_pass]
                logits = model.forward_from(layer, masked_copies(upstream, masks)).logits
                chunk = slice(first, first + len(masks))
                losses[chunk, batch], correct[chunk, batch] = _losses_and_correct(logits, targets, len(masks))
    inverse = inverse.to(device)
    return losses[inverse].double().cpu().numpy(), correct[inverse].cpu().numpy()


def clipped_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-row cross-entropy with the target's probability clipped to [1e-7, 1 - 1e-7].

    As Keras' categorical cross-entropy in the author's ablation script computes it, so that
    one confidently wrong image adds at most 16.1 nats instead of an unbounded amount.
    """
    probabilities = torch.softmax(logits.float(), dim=1).gather(1, targets[:, None])[:, 0]
    return -torch.log(probabilities.clamp(PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP))


def _losses_and_correct(logits: torch.Tensor, targets: torch.Tensor, conditions: int):
    """Per-row cross-entropy and correctness of condition-major logits, shaped (conditions, batch)."""
    repeated_targets = targets.repeat(conditions)
    loss = clipped_cross_entropy(logits, repeated_targets)
    right = logits.argmax(dim=1) == repeated_targets
    return loss.view(conditions, -1), right.view(conditions, -1)


def naive_per_image_losses(
    network: LoadedNetwork,
    images: torch.Tensor,
    labels: torch.Tensor,
    layer: str | None,
    keep_masks: Sequence[torch.Tensor],
    batch_size: int = 500,
    *,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Reference for :func:`per_image_losses`: one full forward pass per condition."""
    require_evaluation_mode(network)
    check_images_and_labels(images, labels)
    if layer is None and len(keep_masks):
        raise ValueError("keep masks were given without a layer to apply them to")
    masks = [None] if layer is None else list(_stack_masks(network, layer, keep_masks))
    losses = np.empty((len(masks), len(images)))
    correct = np.empty((len(masks), len(images)), dtype=bool)
    with torch.no_grad():
        for index, mask in enumerate(masks):
            for batch in image_batches(
                len(images), batch_size, progress, f"naive losses {layer or 'intact'}"
            ):
                inputs = network.prepare_inputs(images[batch].to(network.device))
                ablation = None if mask is None else {layer: mask.to(network.device)}
                logits = network.model(inputs, ablation=ablation)
                loss, right = _losses_and_correct(logits, labels[batch].to(network.device), 1)
                losses[index, batch], correct[index, batch] = loss[0].cpu().numpy(), right[0].cpu().numpy()
    return losses, correct


LossEvaluator = Callable[..., tuple[np.ndarray, np.ndarray]]


# ---- half ablation -------------------------------------------------------------------


def _layer_scores(
    unit_scores: Mapping[str, Mapping[str, np.ndarray]], layer: str, units: int, required: str = "gosi"
) -> dict[str, np.ndarray]:
    """The rankings available for ``layer`` (``required`` must be one: gOSI unless a feature
    ranking is ablated, :mod:`selectivity.causal.feature_tests`), each checked against its unit
    count; :data:`RANKINGS` first, in their order, then any other ranking given."""
    if layer not in unit_scores.get(required, {}):
        raise KeyError(
            f"no {required} scores for layer {layer!r}; scored layers: {sorted(unit_scores.get(required, {}))}"
        )
    present = {}
    for ranking in [*RANKINGS, *(name for name in unit_scores if name not in RANKINGS)]:
        if layer in unit_scores.get(ranking, {}):
            scores = np.asarray(unit_scores[ranking][layer], dtype=np.float64)
            if scores.shape != (units,):
                raise ValueError(
                    f"{ranking} scores of {layer} have shape {scores.shape}, the layer has {units} units"
                )
            present[ranking] = scores
    return present


def random_unit_orders(units: int, draws: int, seed: int, layer_index: int) -> list[np.ndarray]:
    """The random ablation orders of a layer: draw d is the d-th permutation of its generator."""
    generator = layer_generator(seed, layer_index)
    return [generator.permutation(units) for _ in range(draws)]


@dataclass(frozen=True)
class HalfAblationConditions:
    """The unit sets ablated in one layer, in evaluation order: (top, bottom) per ranking, the
    random draws (shared by all rankings), then the matched draws; the row numbers of each kind."""

    count: int
    ablated: list[np.ndarray]
    random_rows: list[int]
    matched_rows: list[int]


def _half_ablation_conditions(
    scores: Mapping[str, np.ndarray],
    units: int,
    settings: AblationSettings,
    layer_index: int,
    layer_strata: np.ndarray | None,
    matched_ranking: str = "gosi",
) -> HalfAblationConditions:
    count = units_to_ablate(settings.fraction, units)
    ablated = [rank_units(s, settings.fraction, c, None) for s in scores.values() for c in ("top", "bottom")]
    random_orders = random_unit_orders(units, settings.random_draws, settings.seed, layer_index)
    random_rows = list(range(len(ablated), len(ablated) + len(random_orders)))
    ablated += [order[:count] for order in random_orders]
    matched_rows = []
    if layer_strata is not None:
        top = rank_units(scores[matched_ranking], settings.fraction, "top", None)
        draws = matched_draws(top, layer_strata, settings.random_draws, settings.seed, layer_index)
        matched_rows = list(range(len(ablated), len(ablated) + len(draws)))
        ablated += draws
    return HalfAblationConditions(count, ablated, random_rows, matched_rows)


def _half_ablation_controls(
    ranking: str,
    increases: np.ndarray,
    bottom: int,
    conditions: HalfAblationConditions,
    matched_ranking: str = "gosi",
) -> list[tuple[str, np.ndarray]]:
    """What the top units' loss increases are compared with: bottom, mean random, mean matched."""
    controls = [
        ("top_vs_bottom", increases[bottom]),
        ("top_vs_random", increases[conditions.random_rows].mean(axis=0)),
    ]
    if ranking == matched_ranking and conditions.matched_rows:
        controls.append(("top_vs_matched", increases[conditions.matched_rows].mean(axis=0)))
    return controls


def half_ablation(
    network: LoadedNetwork,
    images: torch.Tensor,
    labels: torch.Tensor,
    unit_scores: Mapping[str, Mapping[str, np.ndarray]],
    settings: AblationSettings,
    identifiers: dict,
    *,
    strata: Mapping[str, np.ndarray] | None = None,
    progress: bool = False,
    loss_evaluator: LossEvaluator = per_image_losses,
    matched_ranking: str = "gosi",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Top vs bottom vs random ``settings.fraction`` of each layer's units, per ranking.

    With ``strata`` (per layer, :func:`selectivity.causal.matching.layer_strata`) the ranking
    ``matched_ranking`` (gOSI; a feature index for :mod:`selectivity.causal.feature_tests`, which
    must then be one of ``unit_scores``) also gets ``settings.random_draws`` matched draws
    (condition "matched"). Returns the per-condition table and the paired comparisons (columns:
    docs/architecture.md). ``loss_evaluator`` is :func:`per_image_losses` or, for checks,
    :func:`naive_per_image_losses`.
    """
    if len(images) < 2:
        raise ValueError(
            f"half ablation needs at least 2 test images for a standard error, got {len(images)}"
        )
    model = network.model
    intact_losses, intact_correct = loss_evaluator(network, images, labels, None, [], settings.batch_size)
    intact_losses, intact_correct = intact_losses[0], intact_correct[0]
    intact = {"intact_loss": float(intact_losses.mean()), "intact_accuracy": float(intact_correct.mean())}
    logger.info("intact network: loss %.4f, accuracy %.4f on %d images", *intact.values(), len(images))
    rows, comparisons = [], []
    for layer in tqdm(settings.layers, desc="half ablation", disable=not progress):
        layer_index, units = model.layer_index(layer), model.units(layer)
        scores = _layer_scores(unit_scores, layer, units, matched_ranking)
        conditions = _half_ablation_conditions(
            scores, units, settings, layer_index, None if strata is None else strata[layer], matched_ranking
        )
        logger.info(
            "half ablation of %s: %d of %d units, %d conditions",
            layer,
            conditions.count,
            units,
            len(conditions.ablated),
        )
        masks = [keep_mask(units, units_ablated) for units_ablated in conditions.ablated]
        losses, correct = loss_evaluator(network, images, labels, layer, masks, settings.batch_size)
        increases = losses - intact_losses
        base = {**identifiers, "layer": layer, "layer_index": layer_index}
        for number, ranking in enumerate(scores):
            top, bottom = 2 * number, 2 * number + 1
            labelled = [("top", 0, top), ("bottom", 0, bottom)]
            labelled += [("random", draw, row) for draw, row in enumerate(conditions.random_rows)]
            if ranking == matched_ranking:
                labelled += [("matched", draw, row) for draw, row in enumerate(conditions.matched_rows)]
            for condition, draw, row in labelled:
                increase_mean, increase_sem = mean_and_sem(increases[row])
                accuracy = float(correct[row].mean())
                rows.append(
                    {
                        **base,
                        "ranking": ranking,
                        "condition": condition,
                        "draw": draw,
                        "n_units": units,
                        "n_ablated": conditions.count,
                        **intact,
                        "loss_increase_mean": increase_mean,
                        "loss_increase_sem": increase_sem,
                        "accuracy": accuracy,
                        "accuracy_change": accuracy - intact["intact_accuracy"],
                        "n_images": len(images),
                    }
                )
            for comparison, other in _half_ablation_controls(
                ranking, increases, bottom, conditions, matched_ranking
            ):
                comparisons.append(
                    {
                        **base,
                        "ranking": ranking,
                        "comparison": comparison,
                        **paired_comparison(increases[top], other),
                    }
                )
    return pd.DataFrame(rows), pd.DataFrame(comparisons)


def paired_comparison(first: np.ndarray, second: np.ndarray) -> dict[str, float]:
    """first - second paired over images: mean, SEM, paired t-test and Wilcoxon signed-rank p."""
    differences = np.asarray(first, dtype=np.float64) - np.asarray(second, dtype=np.float64)
    mean_difference, sem = mean_and_sem(differences)
    if not differences.any():  # identical conditions: no difference to test
        t_statistic, t_p_value, wilcoxon_p_value = 0.0, 1.0, 1.0
    else:
        t_statistic, t_p_value = stats.ttest_rel(first, second)
        with warnings.catch_warnings():  # scipy warns when few non-zero differences remain
            warnings.simplefilter("ignore", RuntimeWarning)
            wilcoxon_p_value = stats.wilcoxon(differences).pvalue
    return {
        "mean_difference": mean_difference,
        "sem": sem,
        "t_statistic": float(t_statistic),
        "t_p_value": float(t_p_value),
        "wilcoxon_p_value": float(wilcoxon_p_value),
        "n_images": len(differences),
    }


# ---- cumulative ablation -------------------------------------------------------------


def cumulative_orderings(
    scores: Mapping[str, np.ndarray], units: int, random_draws: int, seed: int, layer_index: int
) -> list[tuple[str, int, np.ndarray]]:
    """(ordering name, draw, unit order) for every ranking's descending and ascending order and the random draws."""
    orderings = []
    for ranking, ranking_scores in scores.items():
        orderings.append((f"{ranking}_descending", 0, unit_order(ranking_scores, descending=True)))
        orderings.append((f"{ranking}_ascending", 0, unit_order(ranking_scores, descending=False)))
    for draw, order in enumerate(random_unit_orders(units, random_draws, seed, layer_index)):
        orderings.append(("random", draw, order))
    return orderings


def cumulative_ablation(
    network: LoadedNetwork,
    images: torch.Tensor,
    labels: torch.Tensor,
    unit_scores: Mapping[str, Mapping[str, np.ndarray]],
    settings: AblationSettings,
    identifiers: dict,
    *,
    progress: bool = False,
    loss_evaluator: LossEvaluator = per_image_losses,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test loss and accuracy as a growing fraction of each layer's units is ablated.

    Each ordering ablates the first ``round(fraction * units)`` units of one fixed order, so
    its curve is nested. Returns the curves and their areas (trapezoid over the nominal
    ``fraction_ablated``) per layer, ordering and draw.
    """
    model = network.model
    fractions = np.array(settings.cumulative_fractions)
    curves, areas = [], []
    for layer in tqdm(settings.layers, desc="cumulative ablation", disable=not progress):
        layer_index, units = model.layer_index(layer), model.units(layer)
        scores = _layer_scores(unit_scores, layer, units)
        orderings = cumulative_orderings(scores, units, settings.random_draws, settings.seed, layer_index)
        counts = [units_to_ablate(fraction, units) for fraction in fractions]
        logger.info(
            "cumulative ablation of %s: %d orderings x %d fractions", layer, len(orderings), len(fractions)
        )
        masks = [keep_mask(units, order[:count]) for _, _, order in orderings for count in counts]
        losses, correct = loss_evaluator(network, images, labels, layer, masks, settings.batch_size)
        # Rows are ordering-major: (orderings, fractions) after averaging over images.
        test_loss = losses.mean(axis=1).reshape(len(orderings), len(fractions))
        test_accuracy = correct.mean(axis=1).reshape(len(orderings), len(fractions))
        base = {**identifiers, "layer": layer, "layer_index": layer_index}
        for number, (name, draw, _) in enumerate(orderings):
            for point, (fraction, count) in enumerate(zip(fractions, counts)):
                curves.append(
                    {
                        **base,
                        "ordering": name,
                        "draw": draw,
                        "fraction_ablated": float(fraction),
                        "n_ablated": count,
                        "test_loss": float(test_loss[number, point]),
                        "test_accuracy": float(test_accuracy[number, point]),
                    }
                )
            areas.append(
                {
                    **base,
                    "ordering": name,
                    "draw": draw,
                    "auc_accuracy": float(np.trapezoid(test_accuracy[number], fractions)),
                    "auc_loss": float(np.trapezoid(test_loss[number], fractions)),
                }
            )
    return pd.DataFrame(curves), pd.DataFrame(areas)

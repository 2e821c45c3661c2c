"""The claims in words, made from a run's settings: each claim's statement and verdict rule, which
control makes it specific, what each row of the claims table means (its ``reading``), whether a
row's interval and its verdict agree (and why not where they cannot), and the unit of each
claim's effect. Words only: the verdicts are decided in :mod:`selectivity.claims.evaluation`.

Every number in these texts comes from the settings (:class:`selectivity.claims.table.ClaimSettings`:
gOSI threshold, ablated fraction, checkpoints, correlation method, margin, confidence), so a
configuration with other values gets other words (docs/method.md §6.2-§6.3).
"""

from __future__ import annotations

import math

import pandas as pd

from selectivity.claims.verdicts import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    SUPPORTED_NOT_SPECIFIC,
    TOO_FEW,
)

#: The ``control`` column: a test of the claim itself, a specificity control (the same test on a
#: control quantity: where it is supported, the claim is "supported, not specific"), or a
#: comparison reported beside the claim that decides nothing.
NOT_A_CONTROL, SPECIFICITY_CONTROL, COMPARISON = "none", "specificity", "comparison"
CONTROL_KINDS = (NOT_A_CONTROL, SPECIFICITY_CONTROL, COMPARISON)

#: The ``claimed_side`` column: where the claim puts the effect relative to ``null_value``.
ABOVE, BELOW = "above", "below"

#: The tests that make a claim specific to orientation selectivity (docs/method.md §6.2): C2's
#: controls (the same correlation for the shuffled-stimulus gOSI and for the mean grating
#: response: supported means they rise with accuracy too), and C4's and C5's comparison of the top
#: half with a random half matched on preferred spatial frequency and mean output (not supported
#: means the matched half does more).
SPECIFICITY_TESTS: dict[str, tuple[str, ...]] = {
    "C2": ("shuffled_gosi_vs_accuracy", "mean_response_vs_accuracy"),
    "C4": ("top_minus_matched",),
    "C5": ("matched_minus_top",),
}

_CORRELATION_CLAIMS = ("C3",)


def percent(fraction: float) -> str:
    """0.5 -> '50%', 0.25 -> '25%', 1/3 -> '33.3%'."""
    return f"{100 * fraction:.3g}%"


def checkpoint_words(checkpoint: str) -> str:
    """'best' -> 'the best-validation checkpoint', 'final' -> "each network's last saved epoch"."""
    return {
        "best": "the best-validation checkpoint (lowest validation loss)",
        "final": "each network's last saved epoch",
    }.get(checkpoint, f"the {checkpoint} checkpoint")


def _networks(settings) -> str:
    level = settings.reference_label_corruption
    return "clean networks" if level == 0 else f"networks with label corruption {level:g}"


def _method(settings) -> str:
    return settings.correlation_method.capitalize()


# ----------------------------------------------------------------------------- statements


def claim_statements(settings) -> dict[str, str]:
    """Each claim's statement, with the run's threshold, fraction, checkpoints and margin."""
    t, p = f"{settings.selectivity_threshold:g}", percent(settings.ablation_fraction)
    networks = _networks(settings)
    return {
        "C1": f"Orientation-selective units (gOSI > {t}) exist in lower and higher layers: in most "
        f"{networks}, at {checkpoint_words(settings.tuning_checkpoint)}, more units are selective for "
        "gratings than for the shuffled-stimulus control, and more than at initialisation (epoch 0).",
        "C2": f"During training, lower-layer orientation selectivity rises together with test accuracy "
        f"(in most {networks}, over their saved epochs after epoch 0). Specific to orientation "
        "selectivity only if neither control rises with accuracy as well: the gOSI of the shuffled "
        "stimuli and the mean grating response (else: supported, not specific).",
        "C3": f"Across networks, at {checkpoint_words(settings.across_network_checkpoint)}, better "
        f"generalization goes with higher lower-layer orientation selectivity ({_method(settings)} "
        "correlation), across label-corruption levels and within them.",
        "C4": f"Ablating the top {p} of a lower layer's units by gOSI raises test loss more than ablating "
        f"the bottom {p} or a random {p} (in most {networks}). Specific to orientation selectivity only "
        f"if it also raises it more than a random {p} matched to the top units on preferred spatial "
        "frequency and mean output (else: supported, not specific).",
        "C5": f"Ablating the top {p} of a lower layer's units by gOSI lowers the shift invariance of the "
        f"higher layers more than ablating the bottom {p} or a random {p} (in most {networks}). "
        f"Specific to orientation selectivity only if it also lowers it more than a matched random {p} "
        "(else: supported, not specific).",
        "C6": f"(Morcos contrast) Ablating the most class-selective {p} of a layer's units is not more "
        f"harmful than ablating a random {p}: in most {networks} it raises test loss by less than the "
        f"random {p} plus the equivalence margin of {settings.equivalence_margin:g} nats per image.",
    }


def _difference_rule(settings) -> str:
    alpha = f"{1 - settings.confidence:.3g}"
    return (
        "each test is about most networks: the median over networks, decided by the exact one-sided "
        f"sign test at level {alpha} (values equal to 0 count against the claim), with the one-sided "
        f"{100 * settings.confidence:g}% order-statistic bounds of the median that invert it; supported if "
        f"the lower bound lies above 0 (the same event as p <= {alpha}), not supported by the mirror rule, "
        f"inconclusive otherwise; fewer than {settings.minimum_networks} networks: inconclusive (too few "
        "networks). The mean and its t interval are reported beside it and decide nothing."
    )


_ALL_OF = " The claim's effect is supported only if every one of its tests is (not supported if any is not)."


def verdict_rules(settings) -> dict[str, str]:
    """Each claim's verdict rule in words, with the run's settings."""
    t, p, method = (
        f"{settings.selectivity_threshold:g}",
        percent(settings.ablation_fraction),
        _method(settings),
    )
    networks, difference = _networks(settings), _difference_rule(settings)
    alpha = f"{1 - settings.confidence:.3g}"
    matched = (
        f" Specificity: the test against the matched random {p}; with the other tests supported, the claim "
        "is supported if it is supported, supported, not specific if it is not supported (the matched units "
        "do more), and inconclusive if it is undecided or the table has no matched condition."
    )
    return {
        "C1": f"Per network ({networks}) at {checkpoint_words(settings.tuning_checkpoint)}, over the lower "
        f"and over the higher layers: the fraction of units with gOSI > {t} minus that for the shuffled "
        "control, and minus that of the same network at epoch 0 (untrained); " + difference + _ALL_OF,
        "C2": f"Per network ({networks}): the {method} correlation across its saved epochs after epoch 0 "
        "between the lower layers' mean gOSI (dead units excluded) and test accuracy; " + difference + " "
        "Specificity controls: the same correlation for the shuffled-stimulus gOSI and for the mean peak "
        "grating response, each decided by the same rule; if the gOSI test is supported and a control is "
        "supported too, the claim is supported, not specific.",
        "C3": f"At {checkpoint_words(settings.across_network_checkpoint)}, over all networks: the {method} "
        "correlation between the lower layers' mean gOSI (dead units excluded) and test accuracy, with a "
        f"two-sided {100 * settings.confidence:g}% Fisher-z interval and a permutation p-value "
        f"({settings.n_permutations} permutations; needs two label-corruption levels), and the within-level "
        "rank correlation (ranks within each label-corruption level, permuted within levels), which the "
        f"corruption level cannot drive; each supported if its interval lies above 0 and its p-value is at "
        f"most {alpha} (two different tests, so both are needed)." + _ALL_OF,
        "C4": f"Per network ({networks}), per lower layer and pooled over them: test-loss increase after "
        f"ablating the top {p} of units by gOSI minus after the bottom {p}, and minus after a random {p} "
        "(means over draws); " + difference + _ALL_OF + matched,
        "C5": f"Per network ({networks}), per ablated lower layer and pooled: normalised shift invariance of "
        f"the higher layers after ablating the bottom {p} and a random {p} minus after the top {p} by gOSI, "
        "averaged over measured layers, directions and shifts; " + difference + _ALL_OF + matched,
        "C6": f"Per network ({networks}), over all layers of the half-ablation table: test-loss increase "
        f"after ablating the top {p} of units by class selectivity minus after a random {p} (mean over "
        "draws). Supported (not more harmful in most networks) only if the upper order-statistic bound of "
        f"the median is below the equivalence margin of {settings.equivalence_margin:g} nats per image, "
        f"i.e. the exact sign test of 'below the margin' gives p <= {alpha}; not supported if the median "
        "is shown to exceed the margin; inconclusive otherwise. The same difference for units ranked by "
        "gOSI is reported for comparison and decides nothing.",
    }


# ----------------------------------------------------------------------------- units


def effect_unit(claim: str, settings) -> str:
    """The unit of a claim's effect (``effect_size``, its interval, ``detectable_effect``, ``null_value``)."""
    return {
        "C1": f"fraction of units with gOSI > {settings.selectivity_threshold:g}",
        "C2": f"{_method(settings)} correlation (no unit)",
        "C3": f"{_method(settings)} correlation (no unit)",
        "C4": "nats per image",
        "C5": "normalised invariance (no unit)",
        "C6": "nats per image",
    }.get(claim, "")


#: Each claim in a few words (the claims figure's panel titles; the statements say it in full).
CLAIM_TITLES = {
    "C1": "orientation-selective units exist",
    "C2": "lower-layer selectivity rises with accuracy in training",
    "C3": "selectivity goes with generalization across networks",
    "C4": "top-gOSI ablation raises test loss more than controls",
    "C5": "top-gOSI ablation lowers shift invariance more than controls",
    "C6": "class-selective ablation not more harmful than random",
}

#: What a claim's effect is (the claims figure's x-axis label, before the unit).
EFFECT_QUANTITIES = {
    "C1": "median difference in the fraction of selective units",
    "C2": "median of per-network correlations over epochs",
    "C3": "correlation across networks",
    "C4": "median difference in test-loss increase",
    "C5": "median difference in higher-layer shift invariance",
    "C6": "median difference in test-loss increase",
}


def effect_axis_label(claim: str, unit: str) -> str:
    """'median difference in test-loss increase (nats per image)'."""
    quantity = EFFECT_QUANTITIES.get(claim, "effect")
    return f"{quantity} ({unit})" if unit else quantity


# ----------------------------------------------------------------------------- what each row means


def _scope(claim: str, layer: str) -> str:
    """Where a row's networks are measured, as the start of a sentence ('' where the claim says it)."""
    if claim in ("C2", "C3"):
        return ""
    return {
        "lower": "in the lower layers, ",
        "higher": "in the higher layers, ",
        "pooled": "pooled over the lower layers, ",
        "all": "averaged over all layers, ",
        "lower+higher": "",
    }.get(str(layer), f"in layer {layer}, ")


def _test_phrases(claim: str, test: str, settings) -> tuple[str, str] | None:
    """(what a supported row shows, what a not-supported row shows) for one test, or None if unknown."""
    t, p = f"{settings.selectivity_threshold:g}", percent(settings.ablation_fraction)
    margin = f"{settings.equivalence_margin:g} nats per image"

    def ablation(control: str, what: str) -> tuple[str, str]:
        return (
            f"ablating the top {p} by gOSI {what} more than ablating {control}",
            f"ablating the top {p} by gOSI {what} less than ablating {control}",
        )

    controls = {
        "bottom": f"the bottom {p}",
        "random": f"a random {p}",
        "matched": f"a random {p} matched on preferred spatial frequency and mean output",
    }
    phrases = {
        ("C1", "gratings_minus_shuffled"): (
            f"more units have gOSI > {t} for gratings than for the shuffled control",
            f"fewer units have gOSI > {t} for gratings than for the shuffled control",
        ),
        ("C1", "trained_minus_untrained"): (
            f"more units have gOSI > {t} after training than at initialisation",
            f"fewer units have gOSI > {t} after training than at initialisation",
        ),
        ("C2", "gosi_vs_accuracy"): (
            "lower-layer mean gOSI rises with test accuracy over the saved epochs",
            "lower-layer mean gOSI falls as test accuracy rises",
        ),
        ("C2", "shuffled_gosi_vs_accuracy"): (
            "the gOSI of the shuffled stimuli (chance) rises with test accuracy too",
            "the gOSI of the shuffled stimuli falls as test accuracy rises",
        ),
        ("C2", "mean_response_vs_accuracy"): (
            "the mean grating response rises with test accuracy too",
            "the mean grating response falls as test accuracy rises",
        ),
        ("C3", "across_levels"): (
            "networks with more selective lower layers generalise better (across all networks)",
            "networks with more selective lower layers generalise worse (across all networks)",
        ),
        ("C3", "within_levels"): (
            "within each label-corruption level, networks with more selective lower layers generalise better",
            "within each label-corruption level, networks with more selective lower layers generalise worse",
        ),
        ("C6", "class_top_minus_random"): (
            f"ablating the most class-selective {p} raises test loss by less than a random {p} plus the "
            f"margin of {margin}: not more harmful",
            f"ablating the most class-selective {p} raises test loss by more than a random {p} plus the "
            f"margin of {margin}: more harmful",
        ),
        ("C6", "gosi_top_minus_random"): (
            f"ablating the most orientation-selective {p} raises test loss more than a random {p}",
            f"ablating the most orientation-selective {p} raises test loss less than a random {p}",
        ),
    }
    for name, control in controls.items():
        phrases[("C4", f"top_minus_{name}")] = ablation(control, "raises test loss")
        phrases[("C5", f"{name}_minus_top")] = ablation(control, "lowers higher-layer shift invariance")
    return phrases.get((claim, test))


def _claim_phrases(claim: str, settings) -> tuple[str, str]:
    """(what a supported claim row says, what a not-supported one says)."""
    p = percent(settings.ablation_fraction)
    return {
        "C1": (
            "more units are orientation-selective than for the shuffled control and than at initialisation, "
            "in the lower and in the higher layers",
            "at least one of these differences is negative",
        ),
        "C2": (
            "lower-layer orientation selectivity rises with test accuracy over training",
            "lower-layer orientation selectivity falls as test accuracy rises",
        ),
        "C3": (
            "better generalization goes with higher lower-layer selectivity, across and within "
            "label-corruption levels",
            "a correlation across or within label-corruption levels is negative",
        ),
        "C4": (
            f"ablating the top {p} by gOSI raises test loss more than ablating the bottom {p} and a random {p}",
            "ablating the top units raises test loss less than a control does",
        ),
        "C5": (
            f"ablating the top {p} by gOSI lowers higher-layer shift invariance more than ablating the bottom "
            f"{p} and a random {p}",
            "ablating the top units lowers shift invariance less than a control does",
        ),
        "C6": (
            f"ablating the most class-selective {p} is not more harmful than a random {p} (within the margin of "
            f"{settings.equivalence_margin:g} nats per image)",
            f"ablating the most class-selective {p} is more harmful than a random {p} by more than the margin",
        ),
    }.get(claim, ("the claim holds", "it does not"))


def _sentence(
    verdict: str, claimed: str, opposite: str, row, settings, scope: str, most: str | None = None
) -> str:
    """One verdict in words; ``scope`` starts the claim ('in layer conv1, '), correlations have no
    'in most networks' (they are one value over all networks); ``most`` replaces those words."""
    if most is None:
        most = "" if row.claim in _CORRELATION_CLAIMS else "in most networks, "
    where = f"{scope}{most}"
    if row.n_networks == 0 or pd.isna(row.effect_size):
        return f"Inconclusive: not measured (the statistic says why), so it is not known whether {where}{claimed}."
    if verdict == SUPPORTED:
        return f"Supported: {where}{claimed}."
    if verdict == NOT_SUPPORTED:
        return f"Not supported: {where}{opposite}."
    if verdict == TOO_FEW:
        return (
            f"Too few networks to decide ({row.n_networks}; a verdict needs at least "
            f"{settings.minimum_networks}) whether {where}{claimed}."
        )
    needed = row.networks_needed
    decide = (
        f" About {needed:g} networks would decide the observed effect at 80% power."
        if isinstance(needed, (int, float)) and math.isfinite(needed)
        else ""
    )
    return f"Inconclusive: {row.n_networks} networks show neither that {where}{claimed}, nor the opposite.{decide}"


def _claim_sentence(row, settings) -> str:
    claimed, opposite = _claim_phrases(row.claim, settings)
    scope = _scope(row.claim, row.layer)
    if row.verdict == SUPPORTED_NOT_SPECIFIC:
        why = {
            "C2": "a specificity control (the shuffled-stimulus gOSI or the mean grating response) rises with "
            "accuracy as well, so the rise is not shown to be about orientation selectivity",
            "C4": "ablating a random half matched on preferred spatial frequency and mean output raises it more, "
            "so the harm is not about orientation selectivity",
            "C5": "ablating a random half matched on preferred spatial frequency and mean output lowers it more, "
            "so the effect is not about orientation selectivity",
        }.get(row.claim, "a specificity control does as much")
        return f"Supported, not specific: {scope}in most networks, {claimed}; but {why}."
    specific = ""
    if row.verdict == SUPPORTED and row.claim in SPECIFICITY_TESTS:
        specific = (
            " No specificity control rises with accuracy."
            if row.claim == "C2"
            else " It beats a matched random half as well: specific to orientation selectivity."
        )
    return _sentence(row.verdict, claimed, opposite, row, settings, scope) + specific


def _specificity_consequence(row) -> str:
    """What a specificity row's verdict means for its claim."""
    if row.claim == "C2":
        return {
            SUPPORTED: " So C2, if supported, is not specific to orientation selectivity.",
        }.get(row.verdict, " This control does not make C2 non-specific.")
    return {
        SUPPORTED: f" This makes {row.claim} specific to orientation selectivity.",
        NOT_SUPPORTED: f" So {row.claim}, if its other tests are supported, is not specific.",
    }.get(row.verdict, f" {row.claim}'s specificity is undecided.")


def row_reading(row, settings) -> str:
    """One row of the claims table in words: what its verdict means, and why its interval and
    verdict disagree where they do (:func:`interval_disagreement`)."""
    if row.test == "claim":
        text = _claim_sentence(row, settings)
    else:
        phrases = _test_phrases(row.claim, row.test, settings)
        claimed, opposite = phrases or (
            f"the effect of {row.test} lies {row.claimed_side} {row.null_value:g}",
            f"it lies on the other side of {row.null_value:g}",
        )
        text = _sentence(row.verdict, claimed, opposite, row, settings, _scope(row.claim, row.layer))
        if row.control == SPECIFICITY_CONTROL:
            text = f"Specificity control of {row.claim}. " + text + _specificity_consequence(row)
        elif row.control == COMPARISON:
            text = "For comparison (decides no verdict). " + text
        elif row.test in SPECIFICITY_TESTS.get(row.claim, ()):
            text = f"Specificity test of {row.claim}. " + text + _specificity_consequence(row)
    why = interval_disagreement(row, settings)
    return text + (f" {why}" if why else "")


def reading_from_phrases(
    row, settings, claimed: str, opposite: str, most: str, prefix: str = "", suffix: str = ""
) -> str:
    """A row in words from what its verdict shows either way, for claims whose tests are named by
    their settings (C7, :mod:`selectivity.claims.regularisation`): the sentence of
    :func:`row_reading`, ``most`` for its 'in most networks, ', and the interval's disagreement."""
    text = prefix + _sentence(row.verdict, claimed, opposite, row, settings, "", most) + suffix
    why = interval_disagreement(row, settings)
    return text + (f" {why}" if why else "")


# ----------------------------------------------------------------------------- interval and verdict


def interval_side(row) -> str:
    """Where a row's interval lies relative to its null value: 'claimed', 'opposite', 'across' or 'none'."""
    low, high, null = row.ci_low, row.ci_high, row.null_value
    if pd.isna(low) or pd.isna(high) or pd.isna(null):
        return "none"
    above, below = low > null, high < null
    if not (above or below):
        return "across"
    return "claimed" if above == (row.claimed_side == ABOVE) else "opposite"


_EXPECTED_SIDE = {
    SUPPORTED: "claimed",
    SUPPORTED_NOT_SPECIFIC: "claimed",
    NOT_SUPPORTED: "opposite",
    INCONCLUSIVE: "across",
    TOO_FEW: "across",
}


def verdict_agrees_with_interval(row) -> bool:
    """Whether a row's interval lies where its verdict says (True where it has no interval)."""
    side = interval_side(row)
    return side == "none" or _EXPECTED_SIDE.get(row.verdict, side) == side


def interval_disagreement(row, settings) -> str:
    """Why a row's interval and its verdict disagree ('' where they agree or there is no interval).

    The sign-test rows' bounds invert the test the verdict uses, so they always agree; they can
    disagree for C3 (the Fisher-z interval and the permutation test are two tests, both needed),
    with too few networks for any test at the level (the bounds are then [min, max] with less
    coverage), and in a claim row, which shows one of its tests while its verdict combines them all.
    """
    if verdict_agrees_with_interval(row):
        return ""
    side = interval_side(row)
    interval = f"[{row.ci_low:.3g}, {row.ci_high:.3g}]"
    where = {"claimed": "on the claim's side of", "opposite": "on the far side of", "across": "across"}[side]
    null = f"{row.null_value:g}"
    alpha = f"{1 - settings.confidence:.3g}"
    if row.verdict == TOO_FEW:
        return (
            f"Why the interval {interval} lies {where} {null} without a verdict: with {row.n_networks} networks no "
            f"test reaches level {alpha}, and the interval is the range of the values, which covers the median "
            f"with probability {row.ci_coverage:.3g} only."
        )
    if row.test == "claim":
        return (
            f"Why the interval {interval} lies {where} {null} while the verdict is {row.verdict}: a claim row "
            "shows the effect of one of its tests (named in the statistic); its verdict combines all of them."
        )
    if row.claim in _CORRELATION_CLAIMS:
        return (
            f"Why the interval {interval} lies {where} {null} while the verdict is {row.verdict}: the Fisher-z "
            f"interval and the permutation test (p = {row.p_value:.3g}, level {alpha}) are two different tests "
            "and a verdict needs both."
        )
    return f"The interval {interval} lies {where} {null} while the verdict is {row.verdict}."

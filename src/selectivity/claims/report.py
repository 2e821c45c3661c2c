"""How the claims table is shown: an HTML page and a figure for the report's "1. Claims".

Both read the table of :func:`selectivity.claims.evaluation.evaluate_claims` and nothing else, so
the figure's intervals are the table's.
"""

from __future__ import annotations

import os
import textwrap
from html import escape
from typing import Mapping

import numpy as np
import pandas as pd

from selectivity.claims.table import CLAIM_IDS, ClaimSettings
from selectivity.claims.claim_tests import settings_for_model
from selectivity.claims.evaluation import headline_claims
from selectivity.claims.verdicts import (
    INCONCLUSIVE,
    NOT_APPLICABLE,
    NOT_SUPPORTED,
    SUPPORTED,
    SUPPORTED_NOT_SPECIFIC,
    TOO_FEW,
)
from selectivity.claims.wording import (
    BELOW,
    CLAIM_TITLES,
    COMPARISON,
    NOT_A_CONTROL,
    SPECIFICITY_CONTROL,
    effect_axis_label,
    verdict_agrees_with_interval,
)

# Okabe-Ito colours (readable with the common colour-vision deficiencies); every verdict also has
# its words beside its row, and "supported, not specific" a half-filled marker, so no reading
# rests on colour alone.
VERDICT_COLOURS = {
    SUPPORTED: "#009E73",
    SUPPORTED_NOT_SPECIFIC: "#56B4E9",
    NOT_SUPPORTED: "#D55E00",
    INCONCLUSIVE: "#7f7f7f",
    TOO_FEW: "#bdbdbd",
    NOT_APPLICABLE: "#dddddd",
}
#: Controls (specificity controls and comparisons) are drawn in a colour no verdict has, with
#: hollow squares and dashed intervals: their verdict is about the control, not the claim.
CONTROL_COLOUR = "#CC79A7"
DETECTABLE_COLOUR = "#555555"
MARGIN_COLOUR = "#000000"
_ROW_BACKGROUNDS = {
    SUPPORTED: "#d9f2e6",
    SUPPORTED_NOT_SPECIFIC: "#dcecf8",
    NOT_SUPPORTED: "#f8dfd2",
    INCONCLUSIVE: "#f2f2f2",
    TOO_FEW: "#f2f2f2",
    NOT_APPLICABLE: "#ffffff",
}
_CONTROL_BACKGROUND = "#f5e6ef"
_CONTROL_WORDS = {SPECIFICITY_CONTROL: "specificity control", COMPARISON: "comparison"}


def is_control(row) -> bool:
    """Whether a claims-table row is a control (its verdict is the control's, not the claim's)."""
    control = getattr(row, "control", NOT_A_CONTROL)
    return isinstance(control, str) and control != NOT_A_CONTROL


def verdict_label(row, short: bool = False) -> str:
    """The verdict as shown: a control's says whose it is ('specificity control: supported';
    ``short``: 'control: supported', 'comparison: supported')."""
    if is_control(row):
        words = "control" if short and row.control == SPECIFICITY_CONTROL else _CONTROL_WORDS.get(row.control)
        return f"{words or row.control}: {row.verdict}"
    return row.verdict


def _layers_description(claims: pd.DataFrame, settings: ClaimSettings, layers_by_model) -> str:
    parts = []
    for model in dict.fromkeys(claims["model"]):
        model_settings = settings_for_model(settings, model, layers_by_model)
        prefix = f"{model}: " if model is not None and pd.notna(model) else ""
        parts.append(
            f"{prefix}lower layers {', '.join(model_settings.lower_layers)}, higher layers "
            f"{', '.join(model_settings.higher_layers)}"
        )
    return "; ".join(parts)


def _format(value: float) -> str:
    return f"{value:.3g}" if pd.notna(value) else "n/a"


def _needed(row) -> str:
    """Networks needed, with the reason where there is none."""
    note = row.power_note if isinstance(row.power_note, str) else ""
    if pd.isna(row.networks_needed):
        return f"n/a ({escape(note)})" if note else "n/a"
    return f"{row.networks_needed:g}" + (f" ({escape(note)})" if note else "")


def _background(row) -> str:
    return _CONTROL_BACKGROUND if is_control(row) else _ROW_BACKGROUNDS.get(row.verdict, "#fff")


def _interval(row) -> str:
    return f"[{_format(row.ci_low)}, {_format(row.ci_high)}]" if pd.notna(row.ci_low) else "n/a"


def _claim_label(row) -> str:
    """The claim id, with its low-level feature for the analogues beyond orientation (C1 (colour))."""
    feature = getattr(row, "feature", "orientation")
    return (
        row.claim if feature == "orientation" or pd.isna(feature) else f"{row.claim} ({escape(str(feature))})"
    )


def _verdict_rows(table: pd.DataFrame) -> str:
    rows = []
    for row in table.itertuples():
        rows.append(
            f"<tr style='background:{_background(row)}'>"
            f"<td>{escape(str(row.model))}</td><td><b>{_claim_label(row)}</b></td><td>{escape(row.statement)}</td>"
            f"<td><b>{escape(verdict_label(row))}</b></td><td>{escape(str(row.reading))}</td>"
            f"<td>{_format(row.effect_size)}</td><td>{_interval(row)}</td><td>{escape(str(row.unit))}</td>"
            f"<td>{row.n_networks}</td><td>{_needed(row)}</td></tr>"
        )
    return "".join(rows)


def _test_rows(table: pd.DataFrame) -> str:
    rows = []
    for row in table.itertuples():
        rows.append(
            f"<tr style='background:{_background(row)}'>"
            f"<td>{escape(str(row.model))}</td><td><b>{_claim_label(row)}</b></td><td>{escape(str(row.test))}</td>"
            f"<td>{escape(str(row.layer))}</td><td>{escape(str(row.control))}</td>"
            f"<td><b>{escape(verdict_label(row))}</b></td><td>{escape(str(row.reading))}</td>"
            f"<td>{escape(row.statistic)}</td><td>{_format(row.effect_size)}</td><td>{_interval(row)}</td>"
            f"<td>{_format(row.null_value)} ({escape(str(row.claimed_side))})</td>"
            f"<td>{escape(str(row.unit))}</td><td>{_format(row.ci_coverage)}</td><td>{_format(row.p_value)}</td>"
            f"<td>{row.n_networks}</td><td>{row.n_seeds}</td><td>{_format(row.detectable_effect)}</td>"
            f"<td>{_needed(row)}</td></tr>"
        )
    return "".join(rows)


def _legend_html() -> str:
    swatches = [
        f"<span style='background:{colour};padding:2px 6px'>{escape(verdict)}</span>"
        for verdict, colour in _ROW_BACKGROUNDS.items()
        if verdict != TOO_FEW
    ]
    swatches.append(
        f"<span style='background:{_CONTROL_BACKGROUND};padding:2px 6px'>control (specificity control or "
        "comparison): its verdict is about the control, not the claim</span>"
    )
    return "<p>Row colours: " + " ".join(swatches) + "</p>"


def claims_html(
    claims: pd.DataFrame, settings: ClaimSettings, layers_by_model: Mapping[str, Mapping] | None = None
) -> str:
    """The claims table as a self-contained HTML page: headline verdicts, then every test, then the rules.

    Control rows (``control`` other than "none") have a background no verdict has and their verdict
    reads "specificity control: ..." or "comparison: ...". The rules are the table's own (its
    ``rule`` column: the run's settings in words).
    """
    claim_ids = list(dict.fromkeys(claims["claim"]))
    title = f"Claims {claim_ids[0]}-{claim_ids[-1]}" if claim_ids else "Claims"
    keys = ["claim", "feature"] if "feature" in claims.columns else ["claim"]
    rules = "".join(
        f"<li><b>{_claim_label(row)}</b>: {escape(row.rule)}</li>"
        for row in claims.drop_duplicates(keys).itertuples()
    )
    alpha = f"{1 - settings.confidence:.3g}"
    verdict_header = (
        "<tr><th>model</th><th>claim</th><th>statement</th><th>verdict</th><th>what it means</th>"
        f"<th>effect</th><th>interval ({100 * settings.confidence:g}% bounds)</th><th>unit</th>"
        "<th>networks</th><th>networks needed</th></tr>"
    )
    test_header = (
        "<tr><th>model</th><th>claim</th><th>test</th><th>layer</th><th>control</th><th>verdict</th>"
        "<th>what it means</th><th>statistic</th><th>effect</th>"
        f"<th>interval ({100 * settings.confidence:g}% bounds)</th><th>null value (claimed side)</th>"
        "<th>unit</th><th>coverage</th><th>p</th><th>networks</th><th>seeds</th>"
        "<th>detectable at 80% power</th><th>networks needed</th></tr>"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:sans-serif;font-size:13px} table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:4px;vertical-align:top}</style></head><body>"
        f"<h2>{title}: verdicts computed from this run</h2>"
        f"<p>Effects of C1, C2, C4-C6: the median over networks (the claim holds in most networks), "
        f"decided by the exact one-sided sign test at level {alpha}; their interval "
        f"is the pair of one-sided {100 * settings.confidence:g}% order-statistic bounds that invert that "
        "test (so the interval excludes the null value exactly when the test rejects), covering the median "
        "with the probability in the coverage column. C3: correlations with two-sided "
        f"{100 * settings.confidence:g}% Fisher intervals and permutation tests "
        f"({settings.n_permutations} permutations, seed {settings.seed}), both needed. Where a row's "
        "interval and its verdict cannot agree (C3's two tests, too few networks, a claim row that shows "
        "one of its tests), its 'what it means' says why. Controls: C2's specificity controls (the same "
        "correlation for the shuffled-stimulus gOSI and the mean grating response: supported means the "
        "control rises with accuracy too) and C6's comparison (units ranked by gOSI) are rows of their "
        "own, shown as controls; C4's and C5's specificity test is the comparison with a matched random "
        "half. A claim whose effect is supported but whose specificity control shows the effect is not "
        "about orientation selectivity is <i>supported, not specific</i>. Detectable effect: "
        "the effect the test would find with 80% power with the networks it had (sign tests: normal "
        "per-network values with the run's SD; C3: Fisher z); networks needed: how many networks would "
        "decide the observed effect with 80% power (docs/method.md §6.2). A verdict needs at least "
        f"{settings.minimum_networks} networks; {_layers_description(claims, settings, layers_by_model)}; "
        f"gOSI threshold {settings.selectivity_threshold:g}; C6 equivalence margin "
        f"{settings.equivalence_margin:g} nats per image."
        + (
            " C7 (networks trained with the selectivity regulariser, docs/method.md §6.3): one value per seed "
            "(the least-squares slope on the coefficient over that seed's networks, or its difference from the "
            "unregularised network), decided by the same sign test over seeds; its networks needed count every "
            "coefficient's network of each seed needed; the accuracy margin of its comparisons is "
            f"{settings.accuracy_margin:g}."
            if "C7" in claim_ids
            else ""
        )
        + "</p>"
        + _legend_html()
        + "<h3>Verdicts</h3><table>"
        + verdict_header
        + _verdict_rows(headline_claims(claims))
        + "</table><h3>Every test</h3><table>"
        + test_header
        + _test_rows(claims)
        + f"</table><h3>Verdict rules (this run's settings)</h3><ul>{rules}</ul></body></html>\n"
    )


def _row_style(row) -> dict:
    """Colour, marker and line style of one row of the claims figure."""
    if is_control(row):
        return dict(colour=CONTROL_COLOUR, marker="s", fill="none", linestyle="--")
    colour = VERDICT_COLOURS.get(row.verdict, "black")
    marker = "D" if row.test == "claim" else "o"
    fill = "left" if row.verdict == SUPPORTED_NOT_SPECIFIC else "full"
    return dict(colour=colour, marker=marker, fill=fill, linestyle="-")


def _draw_row(ax, position: float, row) -> None:
    style = _row_style(row)
    if pd.notna(row.ci_low) and pd.notna(row.ci_high):
        ax.plot(
            [row.ci_low, row.ci_high],
            [position, position],
            color=style["colour"],
            linewidth=2,
            linestyle=style["linestyle"],
        )
    if pd.notna(row.effect_size):
        ax.plot(
            row.effect_size,
            position,
            style["marker"],
            color=style["colour"],
            markersize=5,
            fillstyle=style["fill"],
            markerfacecolor="white" if style["fill"] == "none" else style["colour"],
            markerfacecoloralt="white",
        )
    if pd.notna(row.detectable_effect):
        ax.plot(row.detectable_effect, position, "|", color=DETECTABLE_COLOUR, markersize=9, mew=1.5)


def _row_note(row) -> str:
    """The words at the right end of a row: verdict (dagger where interval and verdict disagree) and
    'networks run -> networks that would decide'."""
    needed = (
        "n/a"
        if pd.isna(row.networks_needed)
        else "\u221e" if np.isinf(row.networks_needed) else f"{row.networks_needed:g}"
    )
    side = " (claim: below margin)" if row.claimed_side == BELOW else ""
    dagger = "" if verdict_agrees_with_interval(row) else " \u2020"
    return f"{verdict_label(row, short=True)}{side}{dagger}", f"{row.n_networks} \u2192 {needed}"


def claims_figure(claims: pd.DataFrame, model=None, by_feature: bool = False):
    """Per claim, every test's effect with its interval (one panel per claim, its unit on the x axis).

    The claim's tests are coloured by verdict (diamond: the claim's own verdict row; half-filled:
    supported, not specific); controls (specificity controls, comparisons) are hollow squares
    with dashed intervals in a colour no verdict has. Each panel's dotted line marks 0 and a
    dashed line a null value other than 0 (C6's equivalence margin). The grey tick on each row is
    its detectable effect at 80% power. At the right of each row: its verdict in words (a dagger
    where its interval and its verdict disagree: the table's ``reading`` says why), and the
    networks it had and would need to decide its observed effect (``5 -> 12``; ``n/a`` where
    undefined, see the table's note).

    By default the paper's claims (``feature`` "orientation"); ``by_feature`` draws the claims of
    the other low-level features and their comparison (CF) instead, each test labelled with its
    feature, and of those only the claims' own verdict rows and the headline tests, so that the
    panels stay readable (every test is in the table).
    """
    from matplotlib.lines import Line2D

    from selectivity.figures.plots import figure_on_canvas

    if model is not None:
        claims = claims[claims["model"] == model]
    if "feature" in claims.columns:
        paper = (claims["feature"] == "orientation") & claims["claim"].isin(CLAIM_IDS)
        if by_feature:
            claims = claims[~paper & ((claims["test"] == "claim") | claims["headline"].astype(bool))]
        else:
            claims = claims[paper]
    elif by_feature:
        raise ValueError("the claims table has no feature column: it holds the paper's claims only")
    claim_ids = list(dict.fromkeys(claims["claim"]))
    if not claim_ids:
        raise ValueError(f"the claims table has no rows for model {model!r}")
    heights = [int((claims["claim"] == claim).sum()) + 1.2 for claim in claim_ids]
    figure = figure_on_canvas(9.0, 1.4 + 0.25 * sum(heights) + 0.3 * len(claim_ids))
    axes = np.atleast_1d(figure.subplots(len(claim_ids), 1, gridspec_kw={"height_ratios": heights}))
    any_disagreement = False
    for ax, claim in zip(axes, claim_ids):
        rows = claims[claims["claim"] == claim].reset_index(drop=True)
        positions = np.arange(len(rows))[::-1]
        for position, row in zip(positions, rows.itertuples()):
            _draw_row(ax, position, row)
            verdict, networks = _row_note(row)
            any_disagreement |= verdict.endswith("\u2020")
            colour = CONTROL_COLOUR if is_control(row) else VERDICT_COLOURS.get(row.verdict, "black")
            # offsets in points, so the two columns never overlap whatever the axis width
            for text, offset, text_colour in ((networks, 4, "black"), (verdict, 44, colour)):
                ax.annotate(
                    text,
                    (1.0, position),
                    xycoords=ax.get_yaxis_transform(),
                    xytext=(offset, 0),
                    textcoords="offset points",
                    fontsize=6,
                    va="center",
                    color=text_colour,
                )
        ax.axvline(0.0, color="black", linewidth=0.7, linestyle=":")
        if rows["effect_size"].isna().all():
            ax.text(
                0.5,
                0.5,
                "no test has a value here (the claims table's statistic says why)",
                transform=ax.transAxes,
                ha="center",
                va="center",
                fontsize=7,
                color="0.4",
            )
        for margin in sorted({float(v) for v in rows["null_value"].dropna() if float(v) != 0.0}):
            ax.axvline(margin, color=MARGIN_COLOUR, linewidth=0.9, linestyle="--")
            ax.text(
                margin,
                0.04,
                f" margin {margin:g}",
                transform=ax.get_xaxis_transform(),
                fontsize=6,
                va="bottom",
            )
        labels = [f"{row.test} [{row.layer}]" for row in rows.itertuples()]
        if by_feature:
            labels = [f"{row.feature}: {label}" for row, label in zip(rows.itertuples(), labels)]
        ax.set_yticks(positions, labels, fontsize=7)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        headline = rows.loc[rows["headline"].astype(bool), "verdict"]
        words = f" ({CLAIM_TITLES[claim]})" if claim in CLAIM_TITLES and not by_feature else ""
        if by_feature:
            verdicts = rows.loc[rows["headline"].astype(bool), ["feature", "verdict"]].itertuples(index=False)
            text = f"{claim}{words}: " + "; ".join(f"{f} {v}" for f, v in verdicts)
            ax.set_title("\n".join(textwrap.wrap(text, 110)), fontsize=8, loc="left")
        else:
            ax.set_title(
                f"{claim}{words}: {headline.iloc[0] if len(headline) else ''}", fontsize=8, loc="left"
            )
        units = [unit for unit in dict.fromkeys(rows["unit"].dropna()) if unit]
        ax.set_xlabel(effect_axis_label(claim, "; ".join(units)), fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
        ax.locator_params(axis="x", nbins=6)
    handles = [
        Line2D(
            [],
            [],
            color=colour,
            marker="o",
            fillstyle="left" if verdict == SUPPORTED_NOT_SPECIFIC else "full",
            markerfacecoloralt="white",
            linewidth=2,
            label=verdict,
        )
        for verdict, colour in VERDICT_COLOURS.items()
    ]
    handles += [
        Line2D(
            [], [], color=CONTROL_COLOUR, marker="s", markerfacecolor="white", linestyle="--", label="control"
        ),
        Line2D(
            [],
            [],
            color=DETECTABLE_COLOUR,
            marker="|",
            linestyle="",
            markersize=9,
            label="detectable at 80% power",
        ),
        Line2D([], [], color=MARGIN_COLOUR, linestyle="--", linewidth=0.9, label="equivalence margin"),
    ]
    figure.legend(handles=handles, loc="outside lower center", fontsize=7, frameon=False, ncol=4)
    title = (
        "Claims by low-level feature (C1-C5 analogues; CF: across features): each claim's verdict rows;"
        if by_feature
        else "Claims: every test's effect (median over networks; C3 a correlation) and interval, coloured by verdict;"
    ) + "\ncontrols in pink, hollow; right: verdict, networks run \u2192 networks that would decide the observed " "effect at 80% power" + (
        "\n\u2020 interval and verdict disagree: the claims table's reading says why"
        if any_disagreement
        else ""
    )
    figure.suptitle(title + (f" ({model})" if model else ""), fontsize=8)
    return figure


def plot_claims(
    claims: pd.DataFrame,
    pdf_path: str | os.PathLike,
    png_path: str | os.PathLike,
    model=None,
    by_feature: bool = False,
) -> None:
    """Write :func:`claims_figure` to ``pdf_path`` and ``png_path``."""
    import selectivity.figures.plots as plots

    plots.save_figure(claims_figure(claims, model, by_feature), pdf_path, png_path)

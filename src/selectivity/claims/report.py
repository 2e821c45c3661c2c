"""How the claims table is shown: an HTML page and a figure for the report's "1. Claims".

Both read the table of :func:`selectivity.claims.evaluation.evaluate_claims` and nothing else, so
the figure's intervals are the table's.
"""

from __future__ import annotations

import os
from html import escape
from typing import Mapping

import numpy as np
import pandas as pd

from selectivity.claims.table import VERDICT_RULES, ClaimSettings
from selectivity.claims.evaluation import headline_claims, settings_for_model
from selectivity.claims.verdicts import INCONCLUSIVE, NOT_APPLICABLE, NOT_SUPPORTED, SUPPORTED, TOO_FEW

VERDICT_COLOURS = {
    SUPPORTED: "#1b9e77",
    NOT_SUPPORTED: "#d95f02",
    INCONCLUSIVE: "#7f7f7f",
    TOO_FEW: "#bdbdbd",
    NOT_APPLICABLE: "#dddddd",
}
DETECTABLE_COLOUR = "#555555"
_ROW_BACKGROUNDS = {
    SUPPORTED: "#d9f2d9",
    NOT_SUPPORTED: "#f8d7d7",
    INCONCLUSIVE: "#f2f2f2",
    TOO_FEW: "#f2f2f2",
    NOT_APPLICABLE: "#ffffff",
}


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


def _html_rows(table: pd.DataFrame, with_statement: bool) -> str:
    rows = []
    for row in table.itertuples():
        interval = f"[{_format(row.ci_low)}, {_format(row.ci_high)}]" if pd.notna(row.ci_low) else "n/a"
        statement = f"<td>{escape(row.statement)}</td>" if with_statement else ""
        rows.append(
            f"<tr style='background:{_ROW_BACKGROUNDS.get(row.verdict, '#fff')}'>"
            f"<td>{escape(str(row.model))}</td><td><b>{row.claim}</b></td><td>{escape(str(row.test))}</td>"
            f"<td>{escape(str(row.layer))}</td>{statement}<td>{escape(row.statistic)}</td>"
            f"<td>{_format(row.effect_size)}</td><td>{interval}</td><td>{_format(row.ci_coverage)}</td>"
            f"<td>{_format(row.p_value)}</td><td>{row.n_networks}</td><td>{row.n_seeds}</td>"
            f"<td>{_format(row.detectable_effect)}</td><td>{_needed(row)}</td><td><b>{row.verdict}</b></td></tr>"
        )
    return "".join(rows)


def claims_html(
    claims: pd.DataFrame, settings: ClaimSettings, layers_by_model: Mapping[str, Mapping] | None = None
) -> str:
    """The claims table as a self-contained HTML page: headline verdicts, then every test."""
    header = (
        "<tr><th>model</th><th>claim</th><th>test</th><th>layer</th>{statement}<th>statistic</th>"
        f"<th>effect</th><th>interval ({100 * settings.confidence:g}% bounds)</th><th>coverage</th><th>p</th>"
        "<th>networks</th><th>seeds</th><th>detectable at 80% power</th><th>networks needed</th>"
        "<th>verdict</th></tr>"
    )
    rules = "".join(f"<li><b>{claim}</b>: {escape(rule)}</li>" for claim, rule in VERDICT_RULES.items())
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Claims C1-C6</title>"
        "<style>body{font-family:sans-serif;font-size:13px} table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:4px;vertical-align:top}</style></head><body>"
        "<h2>Claims C1-C6: verdicts computed from this run</h2>"
        f"<p>Effects of C1, C2, C4-C6: the median over networks (the claim holds in most networks), "
        f"decided by the exact one-sided sign test at level {1 - settings.confidence:.3g}; their interval "
        f"is the pair of one-sided {100 * settings.confidence:g}% order-statistic bounds that invert that "
        "test (so the interval excludes the null exactly when the test rejects), covering the median with "
        "the probability in the coverage column. C3: correlations with two-sided "
        f"{100 * settings.confidence:g}% Fisher intervals and permutation tests "
        f"({settings.n_permutations} permutations, seed {settings.seed}), both needed. Detectable effect: "
        "the effect the test would find with 80% power with the networks it had (sign tests: normal "
        "per-network values with the run's SD; C3: Fisher z); networks needed: how many networks would "
        "decide the observed effect with 80% power (docs/method.md §6.2). A verdict needs at least "
        f"{settings.minimum_networks} networks; {_layers_description(claims, settings, layers_by_model)}; "
        f"gOSI threshold {settings.selectivity_threshold}; C6 equivalence margin "
        f"{settings.equivalence_margin:g} nats per image.</p>"
        "<h3>Verdicts</h3><table>"
        + header.format(statement="<th>statement</th>")
        + _html_rows(headline_claims(claims), with_statement=True)
        + "</table><h3>Every test</h3><table>"
        + header.format(statement="")
        + _html_rows(claims, with_statement=False)
        + f"</table><h3>Verdict rules</h3><ul>{rules}</ul></body></html>\n"
    )


def claims_figure(claims: pd.DataFrame, model=None):
    """Per claim, every test's effect with its interval, coloured by verdict (one panel per claim).

    Each panel has its own x scale (the claims are in different units: fractions, correlations,
    nats, normalised invariance); the dotted line marks 0. The diamond is the claim's own verdict
    row. The grey tick on each row is its detectable effect at 80% power, and the text at the
    right end says how many networks the row had and how many would decide its observed effect
    (``5 -> 12``; ``n/a`` where undefined, see the table's note).
    """
    from matplotlib.lines import Line2D

    from selectivity.figures.plots import figure_on_canvas

    if model is not None:
        claims = claims[claims["model"] == model]
    claim_ids = list(dict.fromkeys(claims["claim"]))
    if not claim_ids:
        raise ValueError(f"the claims table has no rows for model {model!r}")
    heights = [int((claims["claim"] == claim).sum()) for claim in claim_ids]
    figure = figure_on_canvas(7.5, 1.2 + 0.25 * sum(heights) + 0.35 * len(claim_ids))
    axes = np.atleast_1d(figure.subplots(len(claim_ids), 1, gridspec_kw={"height_ratios": heights}))
    for ax, claim in zip(axes, claim_ids):
        rows = claims[claims["claim"] == claim].reset_index(drop=True)
        positions = np.arange(len(rows))[::-1]
        for position, row in zip(positions, rows.itertuples()):
            colour = VERDICT_COLOURS.get(row.verdict, "black")
            if pd.notna(row.ci_low) and pd.notna(row.ci_high):
                ax.plot([row.ci_low, row.ci_high], [position, position], color=colour, linewidth=2)
            if pd.notna(row.effect_size):
                ax.plot(
                    row.effect_size, position, "D" if row.test == "claim" else "o", color=colour, markersize=5
                )
            if pd.notna(row.detectable_effect):
                ax.plot(row.detectable_effect, position, "|", color=DETECTABLE_COLOUR, markersize=9, mew=1.5)
            needed = "n/a" if pd.isna(row.networks_needed) else f"{row.networks_needed:g}"
            ax.text(
                1.01,
                position,
                f"{row.n_networks} \u2192 {needed}",
                transform=ax.get_yaxis_transform(),
                fontsize=6,
                va="center",
            )
        ax.axvline(0.0, color="black", linewidth=0.7, linestyle=":")
        ax.set_yticks(positions, [f"{row.test} [{row.layer}]" for row in rows.itertuples()], fontsize=7)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        headline = rows.loc[rows["headline"].astype(bool), "verdict"]
        ax.set_title(f"{claim}: {headline.iloc[0] if len(headline) else ''}", fontsize=8, loc="left")
        ax.tick_params(axis="x", labelsize=7)
    handles = [
        Line2D([], [], color=colour, marker="o", linewidth=2, label=verdict)
        for verdict, colour in VERDICT_COLOURS.items()
    ]
    handles.append(
        Line2D(
            [],
            [],
            color=DETECTABLE_COLOUR,
            marker="|",
            linestyle="",
            markersize=9,
            label="detectable at 80% power",
        )
    )
    figure.legend(handles=handles, loc="outside lower center", fontsize=7, frameon=False, ncol=5)
    title = (
        "Claims: every test's effect (median; C3 correlation) and interval over networks, coloured by verdict;\n"
        "right: networks run \u2192 networks that would decide the observed effect at 80% power"
    )
    figure.suptitle(title + (f" ({model})" if model else ""), fontsize=9)
    return figure


def plot_claims(
    claims: pd.DataFrame, pdf_path: str | os.PathLike, png_path: str | os.PathLike, model=None
) -> None:
    """Write :func:`claims_figure` to ``pdf_path`` and ``png_path``."""
    import selectivity.figures.plots as plots

    plots.save_figure(claims_figure(claims, model), pdf_path, png_path)

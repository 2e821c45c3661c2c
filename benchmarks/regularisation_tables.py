"""Print the tables of the selectivity regulariser from a finished run (Markdown, for docs/results.md).

Reads a run directory's ``results/aggregate/feature_summary.csv``, ``results/claims.csv`` and the
training jobs' benchmark files ``results/benchmarks/training/*.tsv`` (made by e.g.
``config/cifar10_subset_regularisation.yaml``) and prints, per regularised model:

1. per layer and coefficient, the clean networks at the claims' checkpoint: the median over seeds of
   the layer's mean index of the regularised feature for gratings and for the shuffled control, and
   of their difference (regularised layers marked; docs/method.md §2.10);
2. per coefficient, the median (and range) over seeds of test accuracy and test loss, and of the
   achieved selectivity of the regularised layers;
3. claim C7: every row of the claims table (test, verdict, effect, interval, networks, networks
   needed; §6.3);
4. the CPU time per network of training with and without the regulariser: each training job's CPU
   seconds (Snakemake's benchmark) divided by the networks it trained, per coefficient, with the
   ratio to coefficient 0.

    python benchmarks/regularisation_tables.py RUN_DIRECTORY [--checkpoint best]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from selectivity.identity import architecture_of, model_regularisation
from selectivity.tuning.summaries import select_checkpoint

LABELS = {
    "orientation": "mean gOSI",
    "spatial_frequency": "mean SF selectivity",
    "colour": "mean colour selectivity",
    "phase": "mean F1/F0",
}


def arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="the run's working directory (holding results/)")
    parser.add_argument(
        "--checkpoint", default="best", choices=("best", "final"), help="causal.checkpoint of the run"
    )
    return parser.parse_args(argv)


def markdown(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in table.columns) + " |"
    rows = ["| " + " | ".join(str(value) for value in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def number(value: float, digits: int = 3) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.{digits}g}"


def coefficient_of(model: str) -> float:
    regularisation = model_regularisation(model)
    return 0.0 if regularisation is None else regularisation.coefficient


def regularised_rows(summary: pd.DataFrame, model: str, feature: str, checkpoint: str) -> pd.DataFrame:
    rows = summary[(summary["model"].map(architecture_of) == model) & (summary["feature"] == feature)]
    rows = rows[np.isclose(rows["label_corruption"].astype(float), 0.0)]
    rows = select_checkpoint(rows, checkpoint)
    return rows.assign(coefficient=rows["model"].map(coefficient_of))


def selectivity_table(rows: pd.DataFrame, layers: list[str]) -> pd.DataFrame:
    wide = rows.pivot_table(
        index=["layer", "layer_index", "coefficient", "seed"], columns="stimulus_set", values="mean_index"
    )
    wide["beyond"] = wide["gratings"] - wide["shuffled"]
    medians = wide.groupby(["layer_index", "layer", "coefficient"]).median().reset_index()
    return pd.DataFrame(
        {
            "layer": [f"**{l}**" if l in layers else l for l in medians["layer"]],
            "c": medians["coefficient"].map(lambda c: f"{c:g}"),
            "gratings": medians["gratings"].map(number),
            "shuffled control": medians["shuffled"].map(number),
            "gratings - shuffled": medians["beyond"].map(number),
        }
    )


def generalization_table(rows: pd.DataFrame, layers: list[str]) -> pd.DataFrame:
    gratings = rows[(rows["stimulus_set"] == "gratings") & rows["layer"].isin(layers)]
    networks = gratings.groupby(["coefficient", "seed"]).agg(
        selectivity=("mean_index", "mean"), accuracy=("test_accuracy", "first"), loss=("test_loss", "first")
    )
    result = []
    for coefficient, seeds in networks.groupby(level="coefficient"):

        def spread(column: str, digits: int = 3) -> str:
            values = seeds[column]
            return f"{number(values.median(), digits)} [{number(values.min(), digits)}, {number(values.max(), digits)}]"

        result.append(
            {
                "c": f"{coefficient:g}",
                "seeds": len(seeds),
                "test accuracy": spread("accuracy"),
                "test loss": spread("loss", 4),
                f"mean index of {', '.join(layers)}": spread("selectivity"),
            }
        )
    return pd.DataFrame(result)


def claim_table(claims: pd.DataFrame, model: str) -> pd.DataFrame:
    rows = claims[(claims["claim"] == "C7") & (claims["model"] == model)]
    return pd.DataFrame(
        {
            "test": rows["test"],
            "role": rows["control"],
            "verdict": rows["verdict"],
            "effect": rows["effect_size"].map(number),
            "interval": [
                f"[{number(low)}, {number(high)}]" for low, high in zip(rows["ci_low"], rows["ci_high"])
            ],
            "unit": rows["unit"],
            "networks": rows["n_networks"],
            "networks needed": rows["networks_needed"].map(lambda v: number(v, 4)),
        }
    )


def dataset_of(job: str, model: str) -> str:
    """The dataset of a training job's name: <model>_<dataset> or <model>_<feature>_<m|p><coefficient>_<dataset>."""
    for feature in LABELS:
        prefix = f"{model}_{feature}_"
        if job.startswith(prefix):
            return job[len(prefix) :].split("_", 1)[1]
    return job[len(model) + 1 :]


def cpu_table(run: Path, model: str) -> pd.DataFrame:
    """CPU seconds per network of ``model``'s training jobs (their benchmark files), per coefficient
    and label-corruption level: median [min, max] over the jobs' networks, and the ratio of medians to
    the jobs without the regulariser at the same level (a directory may hold other configs' jobs)."""
    result = []
    for path in sorted((run / "results" / "benchmarks" / "training").glob("*.tsv")):
        group = path.stem  # <rule name of the model>_<dataset>_c<corruption>_s<seeds>
        job, seeds = group.rsplit("_s", 1)
        name, corruption = job.rsplit("_c", 1)
        if not name.startswith(f"{model}_"):
            continue  # another model's job
        networks = len(seeds.split("_"))
        cpu_s = float(pd.read_csv(path, sep="\t")["cpu_time"].iloc[-1])
        result.append(
            {"job": name, "corruption": corruption, "per_network": cpu_s / networks, "networks": networks}
        )
    table = pd.DataFrame(result)
    if table.empty:
        return table
    summary = table.groupby(["corruption", "job"]).agg(
        networks=("networks", "sum"),
        median=("per_network", "median"),
        low=("per_network", "min"),
        high=("per_network", "max"),
    )
    rows = []
    for (corruption, job), row in summary.iterrows():
        plain = (corruption, f"{model}_{dataset_of(job, model)}")
        base = float(summary.loc[plain, "median"]) if plain in summary.index else float("nan")
        rows.append(
            {
                "training job (model, dataset)": job,
                "label corruption": corruption.replace("p", "."),
                "networks": int(row["networks"]),
                "CPU s per network, median [min, max]": f"{row['median']:.0f} [{row['low']:.0f}, {row['high']:.0f}]",
                "ratio of medians to no regulariser": number(row["median"] / base, 3),
            }
        )
    return pd.DataFrame(rows)


def regularised_layers(run: Path, rows: pd.DataFrame) -> list[str]:
    """The regularised layers, as a regularised network's checkpoint records them (docs/method.md §7.4)."""
    import torch

    network = rows[rows["coefficient"] != 0].iloc[0]
    path = (
        run / "results" / "networks" / network["model"] / network["dataset"]
        / f"corruption{float(network['label_corruption']):.2f}" / f"seed{int(network['seed'])}" / "checkpoints" / "best.pt"
    )  # fmt: skip
    return list(torch.load(path, weights_only=True)["selectivity_regularisation"]["layers"])


def main(argv=None) -> None:
    options = arguments(argv)
    summary = pd.read_csv(options.run / "results" / "aggregate" / "feature_summary.csv")
    claims = pd.read_csv(options.run / "results" / "claims.csv")
    c7 = claims[claims["claim"] == "C7"]
    if c7.empty:
        raise SystemExit(
            f"{options.run}/results/claims.csv has no C7 rows: the run trained no regularised networks"
        )
    for model in c7["model"].unique():
        feature = c7.loc[c7["model"] == model, "feature"].iloc[0]
        rows = regularised_rows(summary, model, feature, options.checkpoint)
        layers = regularised_layers(options.run, rows)
        label = LABELS[feature]
        print(
            f"## {model}: {label} per layer and coefficient ({options.checkpoint} checkpoint, clean networks; "
            f"regularised layers in bold; medians over seeds)\n"
        )
        print(markdown(selectivity_table(rows, layers)) + "\n")
        print(f"## {model}: generalization per coefficient (median [min, max] over seeds)\n")
        print(markdown(generalization_table(rows, layers)) + "\n")
        print(f"## {model}: claim C7 ({feature})\n")
        print(markdown(claim_table(claims, model)) + "\n")
        print(f"## {model}: CPU time per network of training (Snakemake benchmarks)\n")
        print(markdown(cpu_table(options.run, model)) + "\n")


if __name__ == "__main__":
    main()

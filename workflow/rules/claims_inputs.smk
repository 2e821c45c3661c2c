# The input functions and settings of the claims stage (claims.smk).
import hashlib
import json

from selectivity.config import layer_roles, regularisation_study
from selectivity.figures.catalogue import CATEGORIES
from selectivity.tuning.features import THRESHOLD_SETTINGS
from selectivity.networks.catalogue import given_network_claims

# Combined tables: name -> the per-network files they collect (causal ones from the networks
# with causal tests; training metrics from the trained networks).
COLLECTED_TABLES = {
    "tuning": "results/tuning/{network}/tuning.csv",
    "training_metrics": "results/networks/{network}/metrics.csv",
    "class_selectivity": "results/causal/{network}/class_selectivity.csv",
    "half_ablation": "results/causal/{network}/half_ablation.csv",
    "half_ablation_comparisons": "results/causal/{network}/half_ablation_comparisons.csv",
    "cumulative_ablation": "results/causal/{network}/cumulative_ablation.csv",
    "cumulative_ablation_auc": "results/causal/{network}/cumulative_ablation_auc.csv",
    "shift_invariance": "results/causal/{network}/shift_invariance.csv",
}
# The feature causal tables, collected over networks and ranked features ({feature}); made only
# when tuning.features lists a feature besides orientation.
FEATURE_TABLES = {
    "feature_half_ablation": "results/causal/{network}/half_ablation_{feature}.csv",
    "feature_half_ablation_comparisons": "results/causal/{network}/half_ablation_comparisons_{feature}.csv",
    "feature_shift_invariance": "results/causal/{network}/shift_invariance_{feature}.csv",
}
if FEATURES_RANKED:
    COLLECTED_TABLES.update(FEATURE_TABLES)


# The per-unit tuning table of every checkpoint (hundreds of MB at paper scale) stays out of the
# report; every other combined table is attached to it (report category, caption).
REPORTED_TABLES = [table for table in COLLECTED_TABLES if table != "tuning"]
# Report captions of the tables (relative to the rule files).
TABLE_CAPTIONS = "../report/tables"
TABLE_CATEGORIES = {
    "training_metrics": CATEGORIES["training"],
    "class_selectivity": CATEGORIES["causal"],
    "half_ablation": CATEGORIES["causal"],
    "half_ablation_comparisons": CATEGORIES["causal"],
    "cumulative_ablation": CATEGORIES["causal"],
    "cumulative_ablation_auc": CATEGORIES["causal"],
    "shift_invariance": CATEGORIES["causal"],
    "feature_half_ablation": CATEGORIES["features"],
    "feature_half_ablation_comparisons": CATEGORIES["features"],
    "feature_shift_invariance": CATEGORIES["features"],
}


def table_report(path, caption, category, name):
    """``path`` marked for the report: a table under ``category``, subcategory "tables"."""
    return report(
        path,
        caption=f"{TABLE_CAPTIONS}/{caption}.rst",
        category=category,
        subcategory="tables",
        labels={"table": name},
    )


def collected_table_category(wildcards, **_):
    return TABLE_CATEGORIES[wildcards.table]


def collected_table_label(wildcards, **_):
    return {"table": wildcards.table.replace("_", " ")}


def collected_table_inputs(wildcards):
    pattern = COLLECTED_TABLES[wildcards.table]
    if wildcards.table == "training_metrics":
        paths = network_paths(origin="trained")
    else:
        paths = network_paths(causal=pattern.startswith("results/causal/"))
    return expand(pattern, network=paths, feature=FEATURES_RANKED)


def feature_claim_inputs():
    """The feature tables the claims and depth profiles read (none without a ranked feature)."""
    if not FEATURES_RANKED:
        return {}
    return {
        "feature_summary": "results/aggregate/feature_summary.csv",
        "feature_half_ablation": "results/aggregate/feature_half_ablation.csv",
        "feature_shift_invariance": "results/aggregate/feature_shift_invariance.csv",
    }


def feature_thresholds():
    """Every measured feature's threshold for "selective" (orientation: tuning.selectivity_threshold)."""
    tuning = config["tuning"]
    thresholds = {"orientation": tuning["selectivity_threshold"]}
    thresholds.update({feature: tuning[THRESHOLD_SETTINGS[feature]] for feature in FEATURES_RANKED})
    return thresholds


# The networks trained with the selectivity regulariser (docs/method.md §2.10); None when it is off.
REGULARISATION = regularisation_study(config)


def claim_layers():
    """Each trained model's lower and higher layers for the claims; with the selectivity regulariser,
    its regularised variants too, under the same layers (their rows reach claim C7 of their model; they
    are no models of their own)."""
    layers = {
        model: {"lower_layers": list(roles.lower), "higher_layers": list(roles.higher)}
        for model in TRAINED_MODELS
        for roles in [layer_roles(config, model)]
    }
    for model in TRAINED_MODELS if REGULARISATION is not None else ():
        layers.update({variant: layers[model] for variant in REGULARISATION.variants_of(model)})
    return layers


def given_claims():
    """The param ``given`` of the users' given networks' claims (their layers and the claims they
    cannot be tested on, and why); no param without such networks, so adding the feature reran no
    finished run's claims."""
    return {"given": given_network_claims(config)} if config["external_networks"] else {}


def claim_settings():
    claims = config["claims"]
    return {
        "selectivity_threshold": config["tuning"]["selectivity_threshold"],
        "confidence": claims["confidence"],
        "n_permutations": claims["permutations"],
        "equivalence_margin": claims["equivalence_margin"],
        "seed": claims["seed"],
        "tuning_checkpoint": config["causal"]["checkpoint"],
        # the fraction the causal tables ablate, for the claims' words
        "ablation_fraction": config["causal"]["ablation"]["fraction"],
        "feature_thresholds": {
            feature: threshold
            for feature, threshold in feature_thresholds().items()
            if feature != "orientation"
        },
        # claim C7, only with the selectivity regulariser (so that a run without it keeps its params)
        **(
            {"accuracy_margin": claims["accuracy_margin"], "regularisation": REGULARISATION.record()}
            if REGULARISATION is not None
            else {}
        ),
    }


def config_digest():
    """A digest of the run's whole configuration: the provenance page's param.

    The page shows the whole configuration, so any change must rebuild it; as a param the
    configuration itself would be printed twice (before and now) in the reason lines of
    every dry run after a change, its digest is one short value.
    """
    canonical = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def causal_checkpoints():
    """The checkpoint of every trained network that the causal tests use (the provenance table's rows)."""
    return [
        network.checkpoint_files[network.causal_checkpoint]
        for network in ANALYSED.values()
        if network.origin == "trained"
    ]


def aggregate_targets():
    targets = [
        "results/aggregate/selectivity_summary.csv",
        "results/aggregate/feature_summary.csv",
        "results/aggregate/correlations_across_epochs.csv",
        "results/aggregate/correlations_across_networks.csv",
    ]
    targets += expand("results/aggregate/{table}.csv", table=COLLECTED_TABLES)
    targets += expand("results/aggregate/{table}_summary.csv", table=["half_ablation", "shift_invariance"])
    # written for one architecture too (its figure needs several: workflow.rst says why it is missing)
    targets.append("results/aggregate/depth_profiles.csv")
    return targets

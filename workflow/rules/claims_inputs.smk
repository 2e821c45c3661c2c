# The input functions and settings of the claims stage (claims.smk).
import hashlib
import json

from selectivity.config import layer_roles
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


def collected_table_inputs(wildcards):
    pattern = COLLECTED_TABLES[wildcards.table]
    if wildcards.table == "training_metrics":
        paths = network_paths(origin="trained")
    else:
        paths = network_paths(causal=pattern.startswith("results/causal/"))
    return expand(pattern, network=paths)


def claim_layers():
    """Each trained model's lower and higher layers for the claims."""
    return {
        model: {"lower_layers": list(roles.lower), "higher_layers": list(roles.higher)}
        for model in TRAINED_MODELS
        for roles in [layer_roles(config, model)]
    }


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
        "results/aggregate/correlations_across_epochs.csv",
        "results/aggregate/correlations_across_networks.csv",
    ]
    targets += expand("results/aggregate/{table}.csv", table=COLLECTED_TABLES)
    targets += expand("results/aggregate/{table}_summary.csv", table=["half_ablation", "shift_invariance"])
    return targets

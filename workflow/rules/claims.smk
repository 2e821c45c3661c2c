# Stage 5, claims: every network's tables combined, selectivity against generalization, the
# verdicts on the claims, the claims across architectures, and the run's provenance.


include: "claims_inputs.smk"


rule collect_table:
    input:
        collected_table_inputs,
    output:
        report(
            "results/aggregate/{table}.csv",
            caption="../report/tables/collected.rst",
            category=collected_table_category,
            subcategory="tables",
            labels=collected_table_label,
        ),
    log:
        "logs/aggregate/collect_{table}.log",
    wildcard_constraints:
        table=alternatives(REPORTED_TABLES),
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        method_version=method_version("aggregate"),
    script:
        "../scripts/collect_table.py"


# The tuning table of every network: as collect_table, but not in the report (one row per unit
# and checkpoint: far too large to embed at paper scale).
rule collect_tuning_table:
    input:
        collected_table_inputs,
    output:
        "results/aggregate/{table}.csv",
    log:
        "logs/aggregate/collect_{table}.log",
    wildcard_constraints:
        table="tuning",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        method_version=method_version("aggregate"),
    script:
        "../scripts/collect_table.py"


rule summarise_selectivity:
    input:
        tuning="results/aggregate/tuning.csv",
        metrics="results/aggregate/training_metrics.csv",
    output:
        table_report(
            "results/aggregate/selectivity_summary.csv",
            "selectivity_summary",
            CATEGORIES["selectivity"],
            "selectivity summary",
        ),
    log:
        "logs/aggregate/summarise_selectivity.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        method_version=method_version("aggregate"),
        selectivity_threshold=config["tuning"]["selectivity_threshold"],
    script:
        "../scripts/summarise_selectivity.py"


rule summarise_features:
    input:
        tuning="results/aggregate/tuning.csv",
        metrics="results/aggregate/training_metrics.csv",
    output:
        "results/aggregate/feature_summary.csv",
    log:
        "logs/aggregate/summarise_features.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        method_version=method_version("aggregate"),
        thresholds=feature_thresholds(),
    script:
        "../scripts/summarise_features.py"


rule correlate_selectivity_with_accuracy:
    input:
        "results/aggregate/selectivity_summary.csv",
    output:
        across_epochs=table_report(
            "results/aggregate/correlations_across_epochs.csv",
            "correlations",
            CATEGORIES["selectivity"],
            "correlations across epochs",
        ),
        across_epochs_summary=table_report(
            "results/aggregate/correlations_across_epochs_summary.csv",
            "correlations",
            CATEGORIES["selectivity"],
            "correlations across epochs, summary",
        ),
        across_networks=table_report(
            "results/aggregate/correlations_across_networks.csv",
            "correlations",
            CATEGORIES["selectivity"],
            "correlations across networks",
        ),
    log:
        "logs/aggregate/correlate_selectivity_with_accuracy.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        method_version=method_version("aggregate"),
        causal_checkpoint=config["causal"]["checkpoint"],
        confidence=config["claims"]["confidence"],
        models=TRAINED_MODELS,
    script:
        "../scripts/correlate_selectivity_with_accuracy.py"


rule summarise_causal_table:
    input:
        "results/aggregate/{causal_table}.csv",
    output:
        report(
            "results/aggregate/{causal_table}_summary.csv",
            caption="../report/tables/causal_summary.rst",
            category=CATEGORIES["causal"],
            subcategory="tables",
            labels={"table": "{causal_table} summary"},
        ),
    log:
        "logs/aggregate/summarise_{causal_table}.log",
    wildcard_constraints:
        causal_table="half_ablation|shift_invariance",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        method_version=method_version("aggregate"),
        confidence=config["claims"]["confidence"],
    script:
        "../scripts/summarise_causal_table.py"


rule evaluate_claims:
    input:
        **feature_claim_inputs(),
        summary="results/aggregate/selectivity_summary.csv",
        half_ablation="results/aggregate/half_ablation.csv",
        shift_invariance="results/aggregate/shift_invariance.csv",
    output:
        table=table_report("results/claims.csv", "claims", CATEGORIES["claims"], "claims table (CSV)"),
        html=report(
            "results/claims.html",
            caption="../report/claims.rst",
            category=CATEGORIES["claims"],
            subcategory="verdicts",
            labels={"table": "claims C1-C6 and by feature (verdicts and every test)"},
        ),
    log:
        "logs/aggregate/evaluate_claims.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        **given_claims(),
        method_version=method_version("claims"),
        settings=claim_settings(),
        layers=claim_layers(),
        features=FEATURES_RANKED,
    script:
        "../scripts/evaluate_claims.py"


rule networks_needed:
    input:
        "results/claims.csv",
    output:
        table_report(
            "results/aggregate/networks_needed.csv",
            "networks_needed",
            CATEGORIES["claims"],
            "networks needed",
        ),
    log:
        "logs/aggregate/networks_needed.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        method_version=method_version("claims"),
    script:
        "../scripts/networks_needed.py"


rule depth_profiles:
    input:
        **feature_claim_inputs(),
        summary="results/aggregate/selectivity_summary.csv",
        half_ablation="results/aggregate/half_ablation.csv",
        shift_invariance="results/aggregate/shift_invariance.csv",
    output:
        table=table_report(
            "results/aggregate/depth_profiles.csv",
            "depth_profiles",
            CATEGORIES["claims"],
            "claims by relative depth",
        ),
    log:
        "logs/aggregate/depth_profiles.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        method_version=method_version("claims"),
        settings=claim_settings(),
        layers=claim_layers(),
        features=FEATURES_RANKED,
    script:
        "../scripts/depth_profiles.py"


rule provenance:
    input:
        checkpoints=causal_checkpoints(),
    output:
        table="results/provenance.csv",
        html=report(
            "results/provenance.html",
            caption="../report/provenance.rst",
            category=CATEGORIES["provenance"],
            subcategory="networks",
            labels={"table": "networks, seeds, versions, devices"},
        ),
    log:
        "logs/aggregate/provenance.log",
    localrule: True
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        config_digest=config_digest(),
    script:
        "../scripts/provenance.py"

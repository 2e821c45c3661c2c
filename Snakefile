# selectivity-workflow: orientation and class selectivity of single units in image
# classifiers (Ukita 2020; Morcos et al. 2018). The spine only: stages live in
# workflow/rules/, the science in the selectivity package (src/selectivity/).
from snakemake.utils import min_version

min_version("9.0")


# The default configuration is the config.yaml beside this file, found from any working
# directory (--directory, or --snakefile from elsewhere); --configfile extends it.
configfile: f"{workflow.basedir}/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/tuning.smk"
include: "workflow/rules/causal.smk"
include: "workflow/rules/claims.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        all_targets(),
    localrule: True

"""The command-line tools' defaults, as plain Python (no JAX import).

Kept apart from ``workdir`` so that building the ``unirouter`` argument
parser (``--help``, argument errors) starts in well under a second.
"""

from __future__ import annotations

# Methods of the paper's tables, in the paper's row order: the CLI's
# defaults.
DEFAULT_METHODS = (
    'zero_router',
    'knn',
    'uniroute_kmeans',
    'uniroute_learned_map',
    'mlp_oracle',
    'matfac_oracle',
)
# The ICLR camera-ready's baselines too (MLP / MatFac retrained on the probe
# set): `make run`'s tables (configs/bundled.py); with the CLI,
# --methods ... mlp_retrained,matfac_retrained.
PAPER_METHODS = (
    DEFAULT_METHODS[:4]
    + (
        'mlp_retrained',
        'matfac_retrained',
    )
    + DEFAULT_METHODS[4:]
)
# Protocol defaults per dataset (method.md section 3). The paper: LLMs 2/3
# train, 1/3 test (RouterBench 50/50); prompts 60/10/30 (RouterBench and
# SPROUT: validation 1%). [project choice] Our RouterBench subset has 3,178
# prompts, not 36k: a 10% validation set (~318 prompts) matches the paper's
# absolute N_val (1% of 36k = ~360) better than 1% would (32 prompts).
DATASET_PROTOCOL: dict[str, dict[str, float]] = {
    'routerbench_subset': dict(
        test_llm_fraction=0.5, train_fraction=0.6, val_fraction=0.1
    ),
    'routerbench': dict(
        test_llm_fraction=0.5, train_fraction=0.6, val_fraction=0.01
    ),
    'sprout': dict(
        test_llm_fraction=1 / 3, train_fraction=0.6, val_fraction=0.01
    ),
    'embedllm': dict(
        test_llm_fraction=1 / 3, train_fraction=0.6, val_fraction=0.1
    ),
    'llmrouter_dc': dict(
        test_llm_fraction=1 / 3, train_fraction=0.6, val_fraction=0.1
    ),
    'alpacaeval': dict(
        test_llm_fraction=1 / 3, train_fraction=0.6, val_fraction=0.1
    ),
}

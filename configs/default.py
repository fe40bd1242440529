"""Defaults of every experiment config (method.md section 3 protocol).

Run any dataset config with::

  python experiments/reproduce.py --config=configs/<name>.py[:tiny|:full] \
      --workdir=results/<name>

Dataset configs (``routerbench_subset.py``, ``llmrouter_dc.py``,
``alpacaeval.py``, ``embedllm.py``, ``routerbench.py``, ``sprout.py``) call
:func:`get_config` and override the ``data`` and ``protocol`` sections.
Variants: ``tiny`` (a few trials on a few hundred prompts, for tests and CI,
seconds), ``full`` (the paper's 400 trials).
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

from unirouter_jax.shell.defaults import DEFAULT_METHODS

# Methods of the paper's tables (the per-prompt Oracle and the single LLMs
# are always reported): the CLI's defaults.
METHODS = DEFAULT_METHODS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The default config; ``arg`` is None, ``'tiny'`` or ``'full'``."""
  c = ml_collections.ConfigDict()

  # Which data, and where its prompt embeddings come from.
  c.data = ml_collections.ConfigDict()
  c.data.name = 'routerbench_subset'  # bundled name, or a file/folder path
  c.data.format = config_dict.placeholder(str)  # None: name or inferred
  c.data.embeddings = config_dict.placeholder(str)  # .npy; None: encoder
  c.data.encoder_cache_dir = config_dict.placeholder(str)  # None: default
  c.data.max_prompts = 0  # > 0: a seeded random subset of the prompts

  # The held-out-LLM protocol (method.md section 3).
  c.protocol = ml_collections.ConfigDict()
  c.protocol.num_trials = 400  # random LLM and prompt splits (paper: 400)
  c.protocol.test_llm_fraction = 1 / 3  # unseen test LLMs (paper: 1/3)
  c.protocol.train_fraction = 0.6  # prompts that fit the prompt side
  c.protocol.val_fraction = 0.1  # the probe set that gives psi
  c.protocol.static_pool = False  # True: train pool = test pool = all LLMs
  # True: every LLM unseen, none for training (Math+Code; configs/math_code)
  c.protocol.no_training_llms = False
  c.protocol.seed = 0  # one jax.random.key per run

  # Methods and their hyperparameter candidates.
  c.methods = METHODS  # subset of methods.builtin_estimators()

  # The prompt side: K-means candidates (method.md 2.4).
  c.clustering = ml_collections.ConfigDict()
  c.clustering.kmeans_k = ()  # K candidates; () = 3..max(8, N_val/50)
  c.clustering.knn_k = ()  # K-NN k candidates; () = 5..N_val/3
  c.clustering.heatmap_k = 16  # clusters of the psi heat-map; 0 = none

  # The LearnedMap (method.md 2.2) and the trained oracles.
  c.cluster_map = ml_collections.ConfigDict()
  c.cluster_map.arch = 'mlp'  # 'mlp' (paper's numbers) or 'linear'
  c.cluster_map.epochs_scale = 1.0  # x LearnedMap 5, oracles 30 epochs

  # The plug-in rule and the deferral curve.
  c.routing = ml_collections.ConfigDict()
  c.routing.num_lambdas = 200  # cost weights swept per curve
  c.routing.grid_points = 101  # common normalised-cost grid

  # How trials are batched and placed (results do not depend on these beyond
  # float rounding: trial i's split comes from (seed, i)).
  c.sweep = ml_collections.ConfigDict()
  c.sweep.chunk_size = 25  # trials per saved (resumable) chunk
  c.sweep.trial_batch_size = 0  # trials vmapped together; 0: the backend's
  c.sweep.devices = 0  # devices the trials are sharded over; 0: all
  # XLA devices the CPU runs as; 0: one per core (shell.host_devices)
  c.sweep.cpu_devices = 0

  # What the run writes besides summary.json / metrics.jsonl / results.md.
  c.output = ml_collections.ConfigDict()
  c.output.plots = True  # deferral curves, Area vs K, psi heat-map
  c.output.progress = True  # tqdm progress bar

  if arg == 'tiny':
    apply_tiny(c)
  elif arg == 'full':
    c.protocol.num_trials = 400
  elif arg not in (None, ''):
    raise ValueError(
        f"config arg: expected None, 'tiny' or 'full', got {arg!r}"
    )
  c.lock()
  return c


def apply_tiny(c: ml_collections.ConfigDict) -> None:
  """Seconds-long settings for tests and CI (not for numbers)."""
  c.data.max_prompts = 300
  c.protocol.num_trials = 4
  c.clustering.kmeans_k = (3, 4)
  c.clustering.knn_k = (5, 8)
  c.clustering.heatmap_k = 4
  c.cluster_map.epochs_scale = 0.2
  c.routing.num_lambdas = 40
  c.routing.grid_points = 51
  c.sweep.chunk_size = 2
  c.sweep.trial_batch_size = 2
  c.output.progress = False


def dataset_config(
    arg: str | None, name: str, protocol: dict[str, float], **data
) -> ml_collections.ConfigDict:
  """:func:`get_config` for one dataset: its name and protocol overrides."""
  c = get_config(arg)
  with c.unlocked():
    c.data.name = name
    for k, v in data.items():
      c.data[k] = v
    for k, v in protocol.items():
      c.protocol[k] = v
  return c

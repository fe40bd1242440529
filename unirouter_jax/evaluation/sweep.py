"""The whole protocol as one program, sharded over the devices' trial axis.

``protocol.run_protocol`` already compiles every method over every trial,
cost weight, K (padded to ``k_max``) and pool into one jitted function
(``lax.map`` over trials in chunks of ``trial_batch_size``; grids vmapped or
mapped; splits are index arrays, so the embedding matrix is never copied per
trial: K-means selects a trial's training prompts by a 0/1 weight vector).
This module adds:

* **Multi-device**: ``run_sweep`` shards the trial axis over a 1-D mesh of
  all devices (``jax.shard_map``): each device runs ``lax.map`` over its own
  trials, the data is replicated. A trial's result does not depend on which
  device runs it, so 1 and 8 devices agree trial by trial (bitwise with
  ``trial_batch_size=1``; to float rounding otherwise, since a vmapped
  chunk may group trials differently).
* **Backend defaults**: ``tuned_config`` picks the batching that is fastest
  on the backend: on CPU 8 trials with their whole grids vmapped (the
  trained methods' small steps are latency-bound; more trials per batch
  spill the caches); on accelerators, up to 50 trials and their grids so the
  products fill the chip.

Multi-host (TPU pods, GPU clusters): call ``jax.distributed.initialize()``
on every host first, then make the same ``run_sweep`` call on every host
with the same key and the full data (each host holds the dataset; it is
small next to the per-trial work). ``jax.devices()`` is then the global
device list, the mesh spans every host, and the trials are sharded across
it; the result is a global array sharded over trials (gather it with
``jax.experimental.multihost_utils.process_allgather``). Not yet run on a
pod here.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from unirouter_jax.core import batching
from unirouter_jax.core.structs import RoutingData, Split, TrialResult
from unirouter_jax.estimators.base import Estimator
from unirouter_jax.evaluation import padding as padding_lib
from unirouter_jax.evaluation import protocol
from unirouter_jax.evaluation.protocol import ProtocolConfig

Array = jax.Array

TRIALS = 'trials'
# Trials vmapped together on CPU (see tuned_config).
CPU_TRIAL_BATCH = 8

# SweepProgram.compile's executables, and how many it compiled.
_EXECUTABLES: dict = {}
_MAX_EXECUTABLES = 8
_COMPILED = [0]


def compiled_programs() -> int:
  """Protocol programs ``SweepProgram.compile`` compiled in this process."""
  return _COMPILED[0]


def tuned_config(config: ProtocolConfig, backend: str | None = None):
  """``config`` with the batching that is fastest on ``backend``.

  Args:
    config: protocol settings (everything but batching is kept).
    backend: ``'cpu'``, ``'gpu'``, ``'tpu'``; default ``jax.default_backend()``.

  Returns:
    On CPU 8 trials and the whole grid vmapped together (measured on the
    RouterBench subset with the default methods, 2 cores: 1.35 s per trial
    against 1.89 s one trial and one K at a time; larger batches were
    slower); elsewhere the trials of a chunk (up to 50) and the whole grid.
  """
  backend = backend or jax.default_backend()
  if backend == 'cpu':
    return dataclasses.replace(
        config, trial_batch_size=CPU_TRIAL_BATCH, grid_batch_size=None
    )
  return dataclasses.replace(
      config, trial_batch_size=min(50, config.num_trials), grid_batch_size=None
  )


def trial_mesh(devices: Sequence[jax.Device] | int | None = None) -> Mesh:
  """A 1-D mesh with axis ``'trials'``.

  Args:
    devices: the devices, or how many of ``jax.devices()`` to use (every
      host's under ``jax.distributed``); None or 0: all of them.

  Raises:
    ValueError: naming ``devices`` when more are asked for than exist.
  """
  if devices is None or isinstance(devices, int):
    every = jax.devices()
    count = devices or len(every)
    if not 1 <= count <= len(every):
      raise ValueError(
          f'devices: expected 1..{len(every)} (the {jax.default_backend()} '
          f'devices here), got {count}.'
      )
    devices = every[:count]
  return Mesh(np.asarray(list(devices)), (TRIALS,))


def _place_leaf(x, sharding):
  if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
    impl = jax.random.key_impl(x)
    return jax.random.wrap_key_data(
        _place_leaf(jax.random.key_data(x), sharding), impl=impl
    )
  host = np.asarray(x)
  return jax.make_array_from_callback(host.shape, sharding, lambda i: host[i])


def place(tree, sharding: NamedSharding):
  """``jax.device_put`` that also places on other hosts' devices.

  Under ``jax.distributed`` every process holds the same full ``tree`` (the
  data and the splits, drawn from the same seed) and fills in the shards of
  its own devices.
  """
  if sharding.is_fully_addressable:
    return jax.device_put(tree, sharding)
  return jax.tree.map(lambda x: _place_leaf(x, sharding), tree)


@dataclasses.dataclass(frozen=True)
class SweepProgram:
  """A prepared sweep: ``fn(splits, data)`` with its placed inputs.

  ``fn`` is jitted; ``fn.lower(splits, data).compile()`` compiles it ahead
  of time (benchmarks time compilation this way).
  """

  fn: object
  splits: Split
  data: RoutingData
  num_trials: int
  grids: Mapping[str, Mapping[str, np.ndarray]] | None = None

  def __call__(self) -> TrialResult:
    out = self.fn(self.splits, self.data)
    if self.grids is not None:  # a padded program
      out = padding_lib.unpad(out, self.grids)
    if self.splits.train_idx.shape[0] == self.num_trials:
      return out
    return jax.tree.map(lambda x: x[: self.num_trials], out)

  def compile(self) -> SweepProgram:
    """This program compiled ahead of time (``fn`` is then the executable;
    it runs any splits of the same shapes, e.g. the next chunk's).

    Executables are kept per jitted function and input shapes for the
    process: a later run of the same program (the next N_val of a padded
    validation-size study, another dataset of the same shapes) compiles
    nothing; ``compiled_programs()`` counts them.
    """
    avals = jax.tree.map(
        lambda x: (x.shape, str(x.dtype), x.sharding), (self.splits, self.data)
    )
    key = (self.fn, jax.tree.structure(avals), tuple(jax.tree.leaves(avals)))
    if key not in _EXECUTABLES:
      if len(_EXECUTABLES) >= _MAX_EXECUTABLES:
        _EXECUTABLES.pop(next(iter(_EXECUTABLES)))
      _EXECUTABLES[key] = self.fn.lower(self.splits, self.data).compile()
      _COMPILED[0] += 1
    return dataclasses.replace(self, fn=_EXECUTABLES[key])

  def with_executable(self, other: SweepProgram) -> SweepProgram:
    """These inputs with ``other``'s compiled ``fn`` (same shapes)."""
    return dataclasses.replace(self, fn=other.fn)

  def gathered(self) -> TrialResult:
    """Runs and returns host NumPy arrays, gathered from every process
    under ``jax.distributed`` (each host then holds every trial)."""
    out = self()
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

      out = multihost_utils.process_allgather(out, tiled=True)
    return jax.tree.map(np.asarray, out)


def prepare_sweep(
    key: Array,
    data: RoutingData,
    estimators: Mapping[str, Estimator],
    config: ProtocolConfig | None = None,
    grids: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    splits: Split | None = None,
    *,
    mesh: Mesh | None = None,
) -> SweepProgram:
  """Validates, makes the splits and places them (see :func:`run_sweep`)."""
  config = ProtocolConfig() if config is None else config
  mesh = trial_mesh() if mesh is None else mesh
  if mesh.axis_names != (TRIALS,):
    raise ValueError(
        f"mesh: expected one axis named '{TRIALS}', got {mesh.axis_names}."
    )
  grids, pads = protocol.prepare(data, estimators, config, grids)
  if splits is None:
    splits = protocol.make_splits(key, data.num_prompts, data.num_llms, config)
  num_trials = splits.train_idx.shape[0]
  splits = protocol.padded_splits(splits, grids, config)
  num_dev = mesh.devices.size
  padded = batching.pad_rows(splits, num_dev)
  per_dev = padded.train_idx.shape[0] // num_dev
  fn = _sharded_program(
      mesh,
      *protocol.static_args(
          estimators, grids, pads, config, min(config.trial_batch_size, per_dev)
      ),
  )
  return SweepProgram(
      fn=fn,
      splits=place(padded, NamedSharding(mesh, P(TRIALS))),
      data=place(data, NamedSharding(mesh, P())),
      num_trials=num_trials,
      grids=None if config.padding is None else grids,
  )


def run_sweep(
    key: Array,
    data: RoutingData,
    estimators: Mapping[str, Estimator],
    config: ProtocolConfig | None = None,
    grids: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    splits: Split | None = None,
    *,
    mesh: Mesh | None = None,
) -> TrialResult:
  """Every method over every trial, trials sharded over ``mesh``.

  Same arguments and result as :func:`protocol.run_protocol` (leading
  ``[s]`` trial axis), plus ``mesh``.

  Args:
    key: PRNG key for the splits.
    data: the dataset (replicated on every device).
    estimators: method name -> :class:`Estimator`.
    config: protocol settings (default ``ProtocolConfig()``);
      ``trial_batch_size`` is the ``lax.map``
      chunk on each device (see :func:`tuned_config`).
    grids: optional hyperparameter grids overriding each estimator's own.
    splits: optional precomputed splits (leading ``s`` axis).
    mesh: a 1-D mesh with axis ``'trials'``; default all devices. With one
      device this is ``run_protocol``.

  Returns:
    A :class:`TrialResult` whose arrays have a leading ``[s]`` trial axis,
    sharded over the mesh.

  Raises:
    ValueError: naming the argument, as ``run_protocol``, or for a mesh
      without the ``'trials'`` axis.
  """
  return prepare_sweep(
      key, data, estimators, config, grids, splits, mesh=mesh
  )()


@functools.lru_cache(maxsize=32)
def _sharded_program(mesh, *static):
  """The jitted, sharded protocol (cached per mesh and static settings)."""
  if mesh.devices.size == 1:
    return protocol._compiled_protocol(*static)  # pylint: disable=protected-access
  return jax.jit(
      jax.shard_map(
          protocol.protocol_fn(*static),
          mesh=mesh,
          in_specs=(P(TRIALS), P()),
          out_specs=P(TRIALS),
          check_vma=False,
      )
  )

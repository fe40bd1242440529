"""``unirouter download``: fetch an upstream routing dataset from the HF hub.

Optional and never run by the tests over the network: it needs the
``huggingface_hub`` package (imported only here, when called) and a
connection to huggingface.co. It writes the upstream files the loaders read,
under their upstream names, into ``--to DIR``::

  unirouter download embedllm --to data/embedllm      # train/val/test.csv,
                                                      # question_order.csv,
                                                      # model_order.csv
  unirouter download routerbench --to data/rb         # routerbench_0shot.pkl
  unirouter download routerbench --shots 5 --to data/rb
  unirouter download sprout --to data/sprout          # data/*.parquet

then ``unirouter_jax.data.load(DIR)`` (``load(DIR/routerbench_0shot.pkl)``
for RouterBench). Hub repositories (datasets): ``RZ412/EmbedLLM`` (the file
list of the EmbedLLM authors' ``download_data.py``), ``withmartian/routerbench``
and ``CARROT-LLM-Routing/SPROUT`` (its ``data/`` split files). Reading
SPROUT's parquet files needs pyarrow.

Everything is fetched into a temporary folder inside DIR first and moved
into place only once every file has arrived, so a failure (no client, no
network, a missing file) leaves DIR as it was. Failures raise ``ValueError``
with one line saying what to install or what could not be reached; the CLI
prints it as ``unirouter: error: ...`` (exit 2).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import tempfile
from typing import Any


@dataclasses.dataclass(frozen=True)
class HubDataset:
  """Where a dataset lives on the hub and which of its files to fetch."""

  repo_id: str
  files: tuple[str, ...] = ()  # exact paths in the repository
  patterns: tuple[str, ...] = ()  # or glob patterns (snapshot_download)


DATASETS = {
    'embedllm': HubDataset(
        'RZ412/EmbedLLM',
        files=(
            'train.csv',
            'val.csv',
            'test.csv',
            'question_order.csv',
            'model_order.csv',
        ),
    ),
    'routerbench': HubDataset(
        'withmartian/routerbench', files=('routerbench_0shot.pkl',)
    ),
    'sprout': HubDataset(
        'CARROT-LLM-Routing/SPROUT', patterns=('data/*.parquet',)
    ),
}
# Exception class names (anywhere in the chain) that mean "hub unreachable";
# by name, so that neither huggingface_hub nor its HTTP client is imported.
_OFFLINE = frozenset({
    'LocalEntryNotFoundError',
    'OfflineModeIsEnabled',
    'ConnectionError',
    'ConnectError',
    'ConnectTimeout',
    'ReadTimeout',
    'Timeout',
    'TimeoutError',
    'TimeoutException',
    'NetworkError',
    'gaierror',
})


def spec(dataset: str, shots: int = 0) -> HubDataset:
  """The :class:`HubDataset` of ``dataset`` (RouterBench: ``shots`` 0 or 5)."""
  if dataset not in DATASETS:
    raise ValueError(
        f'unknown dataset {dataset!r}; expected one of {", ".join(DATASETS)}'
    )
  if shots not in (0, 5):
    raise ValueError(f'--shots must be 0 or 5, got {shots}')
  s = DATASETS[dataset]
  if dataset == 'routerbench' and shots == 5:
    s = dataclasses.replace(s, files=('routerbench_5shot.pkl',))
  return s


class _FetchError(ValueError):
  """A failure this module diagnosed itself (its message is final)."""


def _import_hub() -> Any:
  try:
    import huggingface_hub  # noqa: PLC0415 (optional dependency)
  except ImportError:
    raise ValueError(
        'download needs the huggingface_hub package: pip install '
        'huggingface_hub (or fetch the files by hand)'
    ) from None
  return huggingface_hub


def _offline(e: BaseException) -> bool:
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    if any(c.__name__ in _OFFLINE for c in type(e).__mro__):
      return True
    e = e.__cause__ or e.__context__
  return False


def _one_line(e: BaseException) -> str:
  text = ' '.join(str(e).split())
  return f'{type(e).__name__}: {text[:300]}' if text else type(e).__name__


def _fetch(hub: Any, s: HubDataset, into: pathlib.Path, revision) -> list[str]:
  """Downloads ``s`` into ``into``; returns the repository paths fetched."""
  common = dict(repo_type='dataset', revision=revision, local_dir=str(into))
  for f in s.files:
    hub.hf_hub_download(s.repo_id, f, **common)
  got = list(s.files)
  if s.patterns:
    hub.snapshot_download(s.repo_id, allow_patterns=list(s.patterns), **common)
    got += sorted(
        p.relative_to(into).as_posix()
        for pat in s.patterns
        for p in into.glob(pat)
        if p.is_file()
    )
    if len(got) == len(s.files):
      raise _FetchError(
          f'no files matching {", ".join(s.patterns)} in the hub dataset '
          f'{s.repo_id}'
      )
  for f in got:
    if not (into / f).is_file():
      raise _FetchError(f'the hub client wrote no {f} for {s.repo_id}')
  return got


def download(
    dataset: str,
    to: str | os.PathLike,
    *,
    shots: int = 0,
    revision: str | None = None,
    force: bool = False,
    hub: Any = None,
) -> list[pathlib.Path]:
  """Fetches the upstream files of ``dataset`` into the folder ``to``.

  Args:
    dataset: ``embedllm``, ``routerbench`` or ``sprout``.
    to: destination folder (created if absent).
    shots: RouterBench only: the 0-shot (default) or 5-shot pickle.
    revision: a hub branch, tag or commit; None = the default branch.
    force: replace files already in ``to`` (default: refuse).
    hub: the hub client module (default: ``huggingface_hub``, imported
      now); tests pass a fake with ``hf_hub_download`` and
      ``snapshot_download``.

  Returns:
    The files written, as paths under ``to``.

  Raises:
    ValueError: one line, without the client, without the hub, with a
      missing file or a file already in ``to``; ``to`` is then left as it
      was.
  """
  s = spec(dataset, shots)
  dest = pathlib.Path(to)
  if dest.exists() and not dest.is_dir():
    raise ValueError(f'--to {dest} is a file, not a folder')
  if not force:
    there = [dest / f for f in s.files if (dest / f).exists()]
    there += sorted(p for pat in s.patterns for p in dest.glob(pat))
    if there:
      raise ValueError(f'{there[0]} exists; pass --force to replace it')
  hub = _import_hub() if hub is None else hub
  # Folders this call creates (deepest first), removed again if left empty.
  created = [d for d in (dest, *dest.parents) if not d.exists()]
  dest.mkdir(parents=True, exist_ok=True)
  # Inside dest: the same file system, so each final move is a rename.
  tmp = pathlib.Path(tempfile.mkdtemp(prefix='.download-', dir=dest))
  try:
    try:
      got = _fetch(hub, s, tmp, revision)
    except _FetchError as e:
      raise ValueError(f'{e}; nothing was written to {dest}') from None
    except Exception as e:  # noqa: BLE001 (any client failure: one line)
      if _offline(e):
        fix = (
            'HF_HUB_OFFLINE is set: unset it'
            if os.environ.get('HF_HUB_OFFLINE', '0') not in ('', '0')
            else 'connect to huggingface.co'
        )
        raise ValueError(
            f'cannot reach the HuggingFace hub for the dataset {s.repo_id} '
            f'({_one_line(e)}); {fix} or fetch the files by hand; nothing '
            f'was written to {dest}'
        ) from e
      raise ValueError(
          f'downloading the dataset {s.repo_id} failed ({_one_line(e)}); '
          f'nothing was written to {dest}'
      ) from e
    for f in got:
      (dest / f).parent.mkdir(parents=True, exist_ok=True)
      os.replace(tmp / f, dest / f)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
    for d in created:
      if any(d.iterdir()):
        break
      d.rmdir()
  return [dest / f for f in got]


def download_command(args) -> int:
  """``unirouter download``: prints the files written."""
  paths = download(
      args.dataset,
      args.to,
      shots=args.shots,
      revision=args.revision,
      force=args.force,
  )
  for p in paths:
    print(p)
  s = DATASETS[args.dataset]
  first = paths[0] if args.dataset == 'routerbench' else pathlib.Path(args.to)
  print(
      f'{len(paths)} files from {s.repo_id}; load with '
      f'unirouter_jax.data.load({str(first)!r})'
  )
  return 0


def register(subparsers) -> None:
  """Adds ``download`` to an argparse ``subparsers`` object."""
  p = subparsers.add_parser(
      'download',
      help='fetch EmbedLLM, RouterBench or SPROUT from the HuggingFace hub',
      description=(
          'Fetch the upstream files of a routing dataset from the HuggingFace'
          ' hub (needs huggingface_hub and a network connection) into --to.'
      ),
  )
  p.add_argument('dataset', choices=sorted(DATASETS))
  p.add_argument('--to', required=True, help='destination folder')
  p.add_argument(
      '--shots',
      type=int,
      choices=(0, 5),
      default=0,
      help='RouterBench: the 0-shot (default) or 5-shot pickle',
  )
  p.add_argument('--revision', help='hub branch, tag or commit')
  p.add_argument(
      '--force', action='store_true', help='replace files already in --to'
  )
  p.set_defaults(func=download_command)

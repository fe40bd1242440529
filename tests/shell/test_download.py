"""``unirouter download`` with a fake hub client: no network, ever.

The fake writes small files in the upstream layouts where the real
``huggingface_hub`` would (``local_dir / filename``); the tests check that
they land where the loaders look, that an offline hub or a missing client
is one clear line, and that a failure leaves the destination as it was.
"""

import argparse
import os
import pathlib
import shutil
import sys
import tempfile
from unittest import mock

import numpy as np
import pandas as pd
from absl.testing import absltest

from unirouter_jax import data
from unirouter_jax.data import registry
from unirouter_jax.shell import download as dl


class LocalEntryNotFoundError(Exception):
  """Named like the hub client's "offline / cannot connect" error."""


def _embedllm_file(name: str) -> str:
  if name == 'question_order.csv':
    return 'prompt_id,prompt\n0,What is 2+2?\n1,Name a prime.\n'
  if name == 'model_order.csv':
    return 'model_id,model_name\n0,microsoft__phi-2\n1,google__gemma-7b-it\n'
  pid = {'train.csv': 0, 'val.csv': 1, 'test.csv': 1}[name]
  text = ['What is 2+2?', 'Name a prime.'][pid]
  head = 'prompt_id,model_id,category,label,prompt,model_name\n'
  return head + (
      f'{pid},0,mmlu,1,{text},microsoft__phi-2\n'
      f'{pid},1,mmlu,0,{text},google__gemma-7b-it\n'
  )


class FakeHub:
  """``hf_hub_download`` / ``snapshot_download`` writing upstream files."""

  def __init__(self, fail_on=None, error=None):
    self.fail_on, self.error = fail_on, error
    self.calls = []

  def _write(self, repo_id, filename, local_dir):
    if filename == self.fail_on:
      raise self.error
    path = pathlib.Path(local_dir) / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    if repo_id == 'RZ412/EmbedLLM':
      path.write_text(_embedllm_file(filename))
    elif filename.endswith('.pkl'):
      pd.DataFrame({
          'sample_id': ['s0', 's1'],
          'prompt': [str(['Q0?']), str(['Q1?'])],
          'eval_name': ['mbpp', 'mbpp'],
          'claude-v2': [1.0, 0.0],
          'claude-v2|model_response': ['a', 'b'],
          'claude-v2|total_cost': [1e-4, 2e-4],
          'oracle_model_to_route_to': ['claude-v2', 'claude-v2'],
      }).to_pickle(path)
    else:
      path.write_bytes(b'PAR1 not really parquet PAR1')
    # The real client keeps metadata in local_dir/.cache; it must not land.
    (pathlib.Path(local_dir) / '.cache').mkdir(exist_ok=True)
    return str(path)

  def hf_hub_download(
      self, repo_id, filename, *, repo_type, revision, local_dir
  ):
    self.calls.append((repo_id, filename, repo_type, revision))
    return self._write(repo_id, filename, local_dir)

  def snapshot_download(
      self, repo_id, *, allow_patterns, repo_type, revision, local_dir
  ):
    self.calls.append((repo_id, tuple(allow_patterns), repo_type, revision))
    for split in ('train', 'validation', 'test'):
      self._write(repo_id, f'data/{split}-00000-of-00001.parquet', local_dir)
    return local_dir


class DownloadTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.tmp = pathlib.Path(tempfile.mkdtemp())
    self.addCleanup(shutil.rmtree, self.tmp)

  def listing(self, d):
    return sorted(p.relative_to(d).as_posix() for p in d.rglob('*'))

  def test_embedllm_lands_where_the_loader_looks(self):
    hub = FakeHub()
    dest = self.tmp / 'embedllm'
    paths = dl.download('embedllm', dest, hub=hub)
    self.assertEqual(
        self.listing(dest),
        sorted(dl.DATASETS['embedllm'].files),
    )
    self.assertEqual(paths, [dest / f for f in dl.DATASETS['embedllm'].files])
    self.assertEqual(
        {c[:3] for c in hub.calls},
        {
            ('RZ412/EmbedLLM', f, 'dataset')
            for f in dl.DATASETS['embedllm'].files
        },
    )
    ds = data.load(dest)  # format inferred from question_order.csv
    self.assertEqual(ds.llm_names, ('microsoft__phi-2', 'google__gemma-7b-it'))
    # Parameter counts from the bundled table; float32, rtol 1e-6.
    np.testing.assert_allclose(ds.cost_nm[0], [2.7, 7.0], rtol=1e-6)

  def test_routerbench_pickle(self):
    hub = FakeHub()
    (path,) = dl.download('routerbench', self.tmp, hub=hub)
    self.assertEqual(path, self.tmp / 'routerbench_0shot.pkl')
    self.assertEqual(data.load(path).llm_names, ('claude-v2',))
    (path,) = dl.download('routerbench', self.tmp, shots=5, hub=hub)
    self.assertEqual(path.name, 'routerbench_5shot.pkl')
    self.assertEqual(hub.calls[-1][:2], ('withmartian/routerbench', path.name))

  def test_sprout_split_files(self):
    hub = FakeHub()
    dest = self.tmp / 'sprout'
    dl.download('sprout', dest, revision='main', hub=hub)
    self.assertEqual(
        self.listing(dest),
        ['data']
        + [
            f'data/{s}-00000-of-00001.parquet'
            for s in ('test', 'train', 'validation')
        ],
    )
    self.assertEqual(
        hub.calls,
        [('CARROT-LLM-Routing/SPROUT', ('data/*.parquet',), 'dataset', 'main')],
    )
    self.assertEqual(registry.infer_format(dest), 'sprout')

  def test_offline_is_one_line_and_leaves_nothing(self):
    dest = self.tmp / 'new' / 'embedllm'
    hub = FakeHub(
        fail_on='test.csv',
        error=LocalEntryNotFoundError(
            'An error happened while trying to locate the file on the Hub\n'
            'and we cannot find the requested files in the local cache.'
        ),
    )
    with (
        mock.patch.dict(os.environ, {'HF_HUB_OFFLINE': ''}),
        self.assertRaises(ValueError) as cm,
    ):
      dl.download('embedllm', dest, hub=hub)
    self.assertEqual(
        str(cm.exception),
        'cannot reach the HuggingFace hub for the dataset RZ412/EmbedLLM '
        '(LocalEntryNotFoundError: An error happened while trying to locate '
        'the file on the Hub and we cannot find the requested files in the '
        'local cache.); connect to huggingface.co or fetch the files by hand; '
        f'nothing was written to {dest}',
    )
    with (
        mock.patch.dict(os.environ, {'HF_HUB_OFFLINE': '1'}),
        self.assertRaisesRegex(ValueError, 'HF_HUB_OFFLINE is set: unset it'),
    ):
      dl.download('embedllm', dest, hub=hub)
    # The folders made for the download are removed again.
    self.assertEqual(self.listing(self.tmp), [])

  def test_failure_keeps_the_folder_as_it_was(self):
    dest = self.tmp / 'rb'
    dest.mkdir()
    (dest / 'notes.txt').write_text('mine')
    hub = FakeHub(fail_on='routerbench_0shot.pkl', error=OSError('disk full'))
    with self.assertRaisesRegex(
        ValueError,
        r'^downloading the dataset withmartian/routerbench failed \(OSError: '
        r'disk full\); nothing was written to .*rb$',
    ):
      dl.download('routerbench', dest, hub=hub)
    self.assertEqual(self.listing(dest), ['notes.txt'])

  def test_partial_download_is_not_moved(self):
    # Four of five EmbedLLM files arrive, then the connection drops.
    dest = self.tmp / 'e'
    dest.mkdir()
    hub = FakeHub(fail_on='model_order.csv', error=ConnectionError('reset'))
    with self.assertRaisesRegex(ValueError, 'cannot reach the HuggingFace hub'):
      dl.download('embedllm', dest, hub=hub)
    self.assertEqual(self.listing(dest), [])

  def test_chained_connection_error_counts_as_offline(self):
    class HfHubHTTPError(Exception):
      pass

    try:
      try:
        raise ConnectionError('name resolution failed')
      except ConnectionError as inner:
        raise HfHubHTTPError('request failed') from inner
    except HfHubHTTPError as e:
      err = e
    hub = FakeHub(fail_on='routerbench_0shot.pkl', error=err)
    with self.assertRaisesRegex(ValueError, '^cannot reach the HuggingFace'):
      dl.download('routerbench', self.tmp, hub=hub)

  def test_no_client(self):
    with mock.patch.dict(sys.modules, {'huggingface_hub': None}):
      with self.assertRaises(ValueError) as cm:
        dl.download('sprout', self.tmp / 's')
    self.assertEqual(
        str(cm.exception),
        'download needs the huggingface_hub package: pip install '
        'huggingface_hub (or fetch the files by hand)',
    )
    self.assertFalse((self.tmp / 's').exists())

  def test_existing_files_need_force(self):
    dl.download('routerbench', self.tmp, hub=FakeHub())
    with self.assertRaisesRegex(
        ValueError, r'routerbench_0shot.pkl exists; pass --force'
    ):
      dl.download('routerbench', self.tmp, hub=FakeHub())
    dl.download('sprout', self.tmp, hub=FakeHub())
    with self.assertRaisesRegex(ValueError, r'parquet exists; pass --force'):
      dl.download('sprout', self.tmp, hub=FakeHub())
    dl.download('routerbench', self.tmp, force=True, hub=FakeHub())

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "unknown dataset 'mmlu'"):
      dl.download('mmlu', self.tmp, hub=FakeHub())
    with self.assertRaisesRegex(ValueError, '--shots must be 0 or 5, got 3'):
      dl.download('routerbench', self.tmp, shots=3, hub=FakeHub())
    (self.tmp / 'f').write_text('x')
    with self.assertRaisesRegex(ValueError, 'is a file, not a folder'):
      dl.download('sprout', self.tmp / 'f', hub=FakeHub())


class CommandTest(absltest.TestCase):

  def parser(self):
    p = argparse.ArgumentParser(prog='unirouter')
    sub = p.add_subparsers(dest='command', required=True)
    dl.register(sub)
    return p

  def test_command_writes_and_prints(self):
    tmp = pathlib.Path(tempfile.mkdtemp())
    self.addCleanup(shutil.rmtree, tmp)
    args = self.parser().parse_args(
        ['download', 'routerbench', '--to', str(tmp), '--shots', '5']
    )
    with (
        mock.patch.object(dl, '_import_hub', return_value=FakeHub()),
        mock.patch('sys.stdout') as out,
    ):
      self.assertEqual(args.func(args), 0)
    printed = ''.join(c.args[0] for c in out.write.call_args_list)
    self.assertIn(str(tmp / 'routerbench_5shot.pkl'), printed)
    self.assertIn('1 files from withmartian/routerbench', printed)

  def test_flags(self):
    args = self.parser().parse_args(
        ['download', 'sprout', '--to', 'x', '--revision', 'v1', '--force']
    )
    self.assertEqual(
        (args.dataset, args.to, args.shots, args.revision, args.force),
        ('sprout', 'x', 0, 'v1', True),
    )
    with mock.patch('sys.stderr'), self.assertRaises(SystemExit):
      self.parser().parse_args(['download', 'mmlu', '--to', 'x'])


if __name__ == '__main__':
  absltest.main()

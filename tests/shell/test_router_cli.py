"""The router sub-commands, through an argparse parser (router_cli.py)."""

import argparse
import contextlib
import csv
import io
import json
import os
import tempfile

import jax
import numpy as np
from absl.testing import absltest, parameterized

from unirouter_jax import data
from unirouter_jax.deploy import io as router_io
from unirouter_jax.shell import onboard_cli, router_cli


def run(*argv):
  parser = argparse.ArgumentParser(prog='unirouter')
  sub = parser.add_subparsers(dest='command', required=True)
  router_cli.register(sub)
  onboard_cli.register(sub)
  args = parser.parse_args([str(a) for a in argv])
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    code = args.func(args)
  return code, out.getvalue()


class RouterCLITest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp()
    ds = data.load('alpacaeval')
    cls.ds = ds
    rng = np.random.default_rng(0)
    cls.emb = os.path.join(cls.tmp, 'emb.npy')
    np.save(cls.emb, rng.normal(size=(ds.num_prompts, 8)).astype(np.float32))
    cls.router = os.path.join(cls.tmp, 'router')
    code, out = run(
        'fit',
        '--data',
        'alpacaeval',
        '--out',
        cls.router,
        '--embeddings',
        cls.emb,
        '--encoder-id',
        'random-8',
        '--k',
        4,
        '--probe-size',
        60,
    )
    assert code == 0, out
    cls.fit_info = json.loads(out)
    cls.probe = os.path.join(cls.tmp, 'probe.csv')
    run('probe-set', '--router', cls.router, '--out', cls.probe)

  def _labels(self, name, rows):
    path = os.path.join(self.tmp, name)
    with open(path, 'w') as f:
      f.write(rows)
    return path

  def _probe_ids(self):
    with open(self.probe, newline='') as f:
      return [row['prompt_id'] for row in csv.DictReader(f)]

  def test_fit_wrote_a_router(self):
    self.assertEqual(self.fit_info['k'], 4)
    self.assertEqual(self.fit_info['num_probe'], 60)
    self.assertLen(self._probe_ids(), 60)

  def test_add_llm_then_route(self):
    ids = self._probe_ids()
    labels = self._labels(
        'good.csv',
        'prompt_id,quality\n'
        + ''.join(f'{i},{j % 2}\n' for j, i in enumerate(ids)),
    )
    work = os.path.join(self.tmp, 'router_copy')
    router_io.save_router(work, router_io.load_router(self.router))
    code, out = run(
        'add-llm',
        '--router',
        work,
        '--name',
        'brand-new',
        '--cost',
        0.5,
        '--labels',
        labels,
    )
    self.assertEqual(code, 0)
    self.assertIn('brand-new', json.loads(out)['llms'])
    q = os.path.join(self.tmp, 'q.npy')
    np.save(q, np.random.default_rng(1).normal(size=(5, 8)).astype(np.float32))
    code, out = run(
        'route',
        '--router',
        work,
        '--embeddings',
        q,
        '--lambda',
        0.1,
        '--top',
        3,
    )
    res = json.loads(out)['results']
    self.assertLen(res, 5)
    self.assertLen(res[0]['candidates'], 3)
    self.assertEqual(res[0]['choice'], res[0]['candidates'][0]['llm'])
    code, out = run(
        'route', '--router', work, '--embeddings', q, '--budget', 0.001
    )
    self.assertEqual(code, 0)
    json_labels = self._labels('good.json', json.dumps({i: 1.0 for i in ids}))
    run(
        'add-llm',
        '--router',
        work,
        '--name',
        'json-llm',
        '--cost',
        1,
        '--labels',
        json_labels,
    )
    self.assertIn('json-llm', router_io.load_router(work).llm_names)

  @parameterized.named_parameters(
      ('unknown', 'prompt_id,quality\nnot-a-probe,1\n', 'unknown probe ids'),
      ('missing', 'prompt_id,quality\n{first},1\n', 'missing 59'),
      ('range', 'ALL:2', r'\[0, 1\]'),
      ('header', 'id,q\n1,1\n', 'header prompt_id,quality'),
      ('number', 'prompt_id,quality\n{first},yes\n', 'row 2'),
      ('dup_row', 'prompt_id,quality\n{first},1\n{first},0\n', 'duplicate'),
  )
  def test_bad_labels_leave_router_unchanged(self, rows, msg):
    ids = self._probe_ids()
    if rows.startswith('ALL:'):
      rows = 'prompt_id,quality\n' + ''.join(f'{i},{rows[4:]}\n' for i in ids)
    path = self._labels('bad.csv', rows.format(first=ids[0]))
    before = router_io.read_router_manifest(self.router)
    with self.assertRaisesRegex(ValueError, msg):
      run(
          'add-llm',
          '--router',
          self.router,
          '--name',
          'x',
          '--cost',
          1,
          '--labels',
          path,
      )
    self.assertEqual(router_io.read_router_manifest(self.router), before)

  def test_duplicate_name_and_negative_cost(self):
    ids = self._probe_ids()
    path = self._labels('ok.json', json.dumps({i: 0.5 for i in ids}))
    # An existing name takes more labels, never a second cost.
    with self.assertRaisesRegex(ValueError, 'already costs .*set-cost'):
      run(
          'add-llm',
          '--router',
          self.router,
          '--name',
          self.ds.llm_names[0],
          '--cost',
          12345,
          '--labels',
          path,
      )
    with self.assertRaisesRegex(ValueError, 'cost'):
      run(
          'add-llm',
          '--router',
          self.router,
          '--name',
          'neg',
          '--cost',
          -1,
          '--labels',
          path,
      )

  def test_add_llm_again_as_labels_arrive(self):
    ids = self._probe_ids()
    half = len(ids) // 2
    first = self._labels('first.json', json.dumps({i: 1.0 for i in ids[:half]}))
    rest = self._labels('rest.json', json.dumps({i: 0.0 for i in ids[half:]}))
    base = ['add-llm', '--router', self.router, '--name', 'late']
    code, _ = run(*base, '--cost', 0.5, '--labels', first, '--allow-missing')
    self.assertEqual(code, 0)
    code, out = run(*base, '--labels', rest)
    self.assertEqual(code, 0, out)
    router, _ = router_io.load_deployed(self.router)
    j = router.llm_names.index('late')
    self.assertEqual(int(np.asarray(router.probe_visible_pm)[:, j].sum()), 60)
    run('remove-llm', '--router', self.router, '--name', 'late')

  def test_empty_prompt_file(self):
    path = self._labels('empty.txt', '\n\n')
    with self.assertRaisesRegex(ValueError, 'no prompts'):
      run('route', '--router', self.router, '--prompts', path)

  def test_read_prompts_formats(self):
    for name, text in (
        ('p.txt', 'a\nb\n'),
        ('p.json', '["a", "b"]'),
        ('p.jsonl', '{"prompt": "a"}\n"b"\n'),
        ('p.csv', 'prompt\na\nb\n'),
    ):
      self.assertEqual(
          router_cli.read_prompts(self._labels(name, text)), ['a', 'b']
      )


@parameterized.named_parameters(
    ('soft', ['--map', 'soft']),  # beta selected
    ('learned', ['--map', 'learned', '--epochs', 1]),
)
class ClusterMapCLITest(parameterized.TestCase):
  """fit --map, then add-llm, route and export, end to end."""

  def test_fit_add_route_export(self, map_args):
    from unirouter_jax.deploy import portable  # noqa: PLC0415
    from unirouter_jax.deploy import router as router_lib  # noqa: PLC0415

    kind = map_args[1]
    tmp = self.enterContext(tempfile.TemporaryDirectory())
    ds = data.load('alpacaeval')
    rng = np.random.default_rng(0)
    emb = os.path.join(tmp, 'emb.npy')
    np.save(emb, rng.normal(size=(ds.num_prompts, 8)).astype(np.float32))
    router = os.path.join(tmp, 'router')
    fit = ['fit', '--data', 'alpacaeval', '--out', router, '--embeddings', emb]
    fit += ['--encoder-id', 'random-8', '--k', 4, '--probe-size', 60]
    code, out = run(*fit, *map_args, '--calib-size', 40)
    info = json.loads(out)
    self.assertEqual((code, info['cluster_map'], info['k']), (0, kind, 4))
    if kind == 'soft':
      self.assertIn(info['beta'], info['beta_candidates'])
    else:
      self.assertEqual((info['arch'], info['epochs']), ('mlp', 1))
    fitted = router_io.load_router(router)
    self.assertEqual(fitted.cluster_map.kind, kind)
    probe = os.path.join(tmp, 'probe.csv')
    run('probe-set', '--router', router, '--out', probe)
    with open(probe, newline='') as f:
      ids = [row['prompt_id'] for row in csv.DictReader(f)]
    labels, new_labels = os.path.join(tmp, 'labels.json'), {
        pid: float(j % 3 == 0) for j, pid in enumerate(ids)
    }
    with open(labels, 'w') as f:
      json.dump(new_labels, f)
    code, out = run(
        'add-llm', '--router', router, '--name', 'new', '--cost', 0.1,
        '--labels', labels,
    )  # fmt: skip
    self.assertEqual(code, 0)
    added = router_io.load_router(router)
    self.assertEqual(added.cluster_map.kind, kind)
    jax_added = router_lib.add_llm(fitted, 'new', 0.1, new_labels)
    np.testing.assert_array_equal(added.psi_km, jax_added.psi_km)
    jax.tree.map(
        np.testing.assert_array_equal, added.cluster_map, fitted.cluster_map
    )
    q = os.path.join(tmp, 'q.npy')
    q_emb = rng.normal(size=(30, 8)).astype(np.float32)
    np.save(q, q_emb)
    code, out = run(
        'route', '--router', router, '--embeddings', q, '--lambda', 0.5
    )
    got = [r['choice'] for r in json.loads(out)['results']]
    want = router_lib.route(added, q_emb, lam=0.5)
    self.assertEqual(got, want.choice_names)
    code, out = run(
        'route', '--router', router, '--embeddings', q, '--budget', 0.002
    )
    self.assertEqual(code, 0)
    self.assertEqual(json.loads(out)['budget']['calibrated_on'], 'held-out')
    path = os.path.join(tmp, 'router.json')
    code, out = run('export', '--router', router, '--out', path)
    self.assertEqual((code, json.loads(out)['cluster_map']), (0, kind))
    reader = portable.load_json(path)
    np.testing.assert_array_equal(
        portable.route_numpy(reader, q_emb, 0.5), want.choice_q
    )


class MapFlagsTest(absltest.TestCase):

  def test_flags_of_another_map_are_refused(self):
    for args, msg in (
        (['--beta', 1], '--beta: only used with --map soft'),
        (['--map', 'soft', '--epochs', 2], '--epochs: only used with --map'),
        (['--map', 'learned', '--epochs', 0], '--epochs: expected an integer'),
    ):
      with self.subTest(msg=msg), self.assertRaisesRegex(ValueError, msg):
        run('fit', '--data', 'alpacaeval', '--out', '/nonexistent/r', *args)


class OnboardCLITest(absltest.TestCase):

  def test_probe_set_budget_then_onboard(self):
    tmp = tempfile.mkdtemp()
    router = os.path.join(tmp, 'r')
    ds = data.load('routerbench_subset')
    run('fit', '--data', 'routerbench_subset', '--out', router)
    r, _ = router_io.load_deployed(router)
    name = r.llm_names[-1]
    j = len(r.llm_names) - 1
    graded = os.path.join(tmp, 'graded.json')
    with open(graded, 'w') as f:
      json.dump(
          {
              pid: 1.0 - float(r.probe_error_pm[i, j])
              for i, pid in enumerate(r.probe_ids)
              if r.probe_visible_pm[i, j]
          },
          f,
      )
    del ds
    run('remove-llm', '--router', router, '--name', name)
    nxt = os.path.join(tmp, 'next.csv')
    _, out = run(
        'probe-set',
        '--router',
        router,
        '--out',
        nxt,
        '--name',
        'new',
        '--cost',
        '0.001',
        '--budget',
        '12',
    )
    rep = json.loads(out)
    self.assertEqual(rep['probe_prompts'], 12)
    self.assertEqual(rep['labelled'], 0)
    with open(nxt) as f:
      rows = list(csv.DictReader(f))
    self.assertLen(rows, 12)
    self.assertEqual(set(rows[0]), {'prompt_id', 'prompt', 'quality'})
    # Labels so far (from the file the user filled in) are not proposed.
    with open(graded) as f:
      table = json.load(f)
    so_far = os.path.join(tmp, 'so_far.csv')
    with open(so_far, 'w') as f:
      w = csv.writer(f)
      w.writerow(['prompt_id', 'quality'])
      w.writerows([row['prompt_id'], table[row['prompt_id']]] for row in rows)
    _, out = run(
        'probe-set',
        '--router',
        router,
        '--out',
        nxt,
        '--name',
        'new',
        '--cost',
        '0.001',
        '--budget',
        '12',
        '--labels',
        so_far,
    )
    self.assertEqual(json.loads(out)['labelled'], 12)
    with open(nxt) as f:
      again = {row['prompt_id'] for row in csv.DictReader(f)}
    self.assertEmpty(again & {row['prompt_id'] for row in rows})
    # onboard --dry-run leaves the router; onboard writes it.
    args = [
        'onboard',
        '--router',
        router,
        '--name',
        'new',
        '--cost',
        '0.001',
        '--labels',
        graded,
        '--batch',
        '20',
        '--max-labels',
        '40',
        '--tolerance',
        '0',
    ]
    _, out = run(*args, '--dry-run')
    self.assertFalse(json.loads(out)['router_written'])
    self.assertNotIn('new', router_io.load_deployed(router)[0].llm_names)
    _, out = run(*args)
    rep = json.loads(out)
    self.assertEqual(rep['stopped'], 'max_labels')
    self.assertEqual(rep['labels_used'], 40)
    # The estimate after every round: gain left is a part of the Area lost.
    self.assertEqual([r['labels'] for r in rep['rounds']], [0, 20, 40])
    for r in rep['rounds']:
      self.assertGreaterEqual(r['area_lost'], r['gain_left'])
      self.assertGreaterEqual(r['gain_left'], 0.0)
    self.assertEqual(rep['gain_left'], rep['rounds'][-1]['gain_left'])
    new = router_io.load_deployed(router)[0]
    self.assertEqual(int(np.asarray(new.probe_visible_pm)[:, -1].sum()), 40)
    # Bad input names the flag.
    for argv, msg in [
        (
            ['probe-set', '--router', router, '--out', nxt, '--budget', '5'],
            '--name',
        ),
        (
            ['probe-set', '--router', router, '--out', nxt, '--name', 'x'],
            '--name: only used with --budget',
        ),
        (
            [
                'probe-set',
                '--router',
                router,
                '--out',
                'a.txt',
                '--name',
                'x',
                '--budget',
                '5',
                '--cost',
                '1',
            ],
            '--out',
        ),
        (
            [
                'probe-set',
                '--router',
                router,
                '--out',
                nxt,
                '--name',
                'x',
                '--budget',
                '5',
            ],
            '--cost',
        ),
    ]:
      with self.assertRaisesRegex(ValueError, msg):
        run(*argv)


if __name__ == '__main__':
  absltest.main()

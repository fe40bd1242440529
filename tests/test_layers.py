"""The package's layers (docs/architecture.md): no upward import, no circle.

Walks every module of ``unirouter_jax`` with ``ast`` (module-level and
function-level imports alike, so a lazy import cannot hide a dependency) and
fails on an import from a lower wing to a higher one, or on a cycle between
modules.
"""

import ast
import pathlib

from absl.testing import absltest

PKG = pathlib.Path(__file__).resolve().parents[1] / 'unirouter_jax'

# A wing may import wings of a lower rank, and itself; wings of one rank
# (``encoder`` and ``estimators``) may not import each other.
RANK = {
    'core': 0,
    'data': 1,
    'encoder': 2,
    'estimators': 2,
    'evaluation': 3,
    'deploy': 4,
    'shell': 5,
}


def _module_name(path: pathlib.Path) -> str:
  rel = path.relative_to(PKG.parent).with_suffix('')
  parts = list(rel.parts)
  if parts[-1] == '__init__':
    parts = parts[:-1]
  return '.'.join(parts)


def _imports(path: pathlib.Path) -> set[str]:
  """Every ``unirouter_jax`` module that ``path`` imports."""
  tree = ast.parse(path.read_text(), filename=str(path))
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out |= {a.name for a in node.names if a.name.startswith('unirouter_jax')}
    elif isinstance(node, ast.ImportFrom) and node.module:
      if not node.module.startswith('unirouter_jax'):
        continue
      for a in node.names:
        # ``from pkg import module`` names a module; else the module itself.
        full = f'{node.module}.{a.name}'
        out.add(full if _is_module(full) else node.module)
  return out


def _is_module(name: str) -> bool:
  rel = pathlib.Path(*name.split('.')[1:])
  return (PKG / rel).with_suffix('.py').exists() or (PKG / rel).is_dir()


def _wing(name: str) -> str | None:
  parts = name.split('.')
  return parts[1] if len(parts) > 1 else None


def graph() -> dict[str, set[str]]:
  return {
      _module_name(p): _imports(p)
      for p in sorted(PKG.rglob('*.py'))
      if 'datasets' not in p.parts
  }


class LayerTest(absltest.TestCase):

  def test_every_wing_is_known(self):
    wings = {_wing(m) for m in graph()} - {None}
    self.assertEqual(wings, set(RANK))

  def test_no_import_points_up(self):
    bad = []
    for mod, deps in graph().items():
      wing = _wing(mod)
      if wing is None:  # the curated top-level API may import anything
        continue
      for dep in deps:
        other = _wing(dep)
        if other is None:
          bad.append(f'{mod} -> {dep} (the top-level package)')
        elif other != wing and RANK[other] >= RANK[wing]:
          bad.append(f'{mod} ({wing}) -> {dep} ({other})')
    self.assertEqual(bad, [])

  def test_core_imports_only_jax_and_numpy(self):
    allowed = {'jax', 'numpy', 'flax', '__future__', 'functools', 'typing'}
    allowed |= {'collections', 'dataclasses', 'unirouter_jax', 'math'}
    bad = []
    for path in sorted((PKG / 'core').glob('*.py')):
      for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
          names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
          names = [node.module]
        bad += [
            f'{path.name}: {n}' for n in names if n.split('.')[0] not in allowed
        ]
    self.assertEqual(bad, [])

  def test_no_circle(self):
    g = graph()
    state, stack, cycles = {}, [], []

    def visit(node):
      state[node] = 1
      stack.append(node)
      for dep in sorted(g.get(node, ())):
        if dep not in g:
          continue
        if state.get(dep) == 1:
          cycles.append(stack[stack.index(dep) :] + [dep])
        elif dep not in state:
          visit(dep)
      stack.pop()
      state[node] = 2

    for node in sorted(g):
      if node not in state:
        visit(node)
    # The package's own __init__ files re-export their modules; a module
    # importing its package's __init__ is not a circle of concepts.
    cycles = [c for c in cycles if not any(x.count('.') == 0 for x in c)]
    self.assertEqual(cycles, [])

  def test_the_walk_sees_imports(self):
    # The test above cannot pass by seeing nothing.
    deps = graph()['unirouter_jax.evaluation.protocol']
    self.assertIn('unirouter_jax.core.curves', deps)
    self.assertIn('unirouter_jax.estimators.base', deps)


if __name__ == '__main__':
  absltest.main()

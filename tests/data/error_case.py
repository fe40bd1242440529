"""Shared test base: temp files and exact DataError messages with lines."""

import pathlib
import shutil
import tempfile

from absl.testing import parameterized

from unirouter_jax import data


class ErrorCase(parameterized.TestCase):
  """Writes small files in a temp dir and checks DataError messages."""

  def make_dir(self) -> pathlib.Path:
    tmp = pathlib.Path(tempfile.mkdtemp())
    self.addCleanup(shutil.rmtree, tmp)
    return tmp

  def write(self, name: str, text: str, folder=None) -> pathlib.Path:
    path = (folder or self.make_dir()) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path

  def assert_error(self, fn, message: str, token: str | None = None):
    """``fn()`` raises DataError with exactly ``message``.

    With ``token``, the error has a 1-based ``line`` and that line of the
    error's file (as an editor numbers them) contains ``token``, the bad
    value. Returns the error.
    """
    with self.assertRaises(data.DataError) as cm:
      fn()
    err = cm.exception
    self.assertIsInstance(err, ValueError)
    self.assertEqual(str(err), message)
    self.assertEqual(len(str(err).splitlines()), 1)
    if token is not None:
      self.assertIsNotNone(err.line, msg=str(err))
      lines = pathlib.Path(err.file).read_text().splitlines()
      self.assertIn(token, lines[err.line - 1], msg=str(err))
    return err

"""Line numbers of records: what an editor shows, whatever the quoting."""

import json

import numpy as np
import pandas as pd
from absl.testing import absltest, parameterized

from tests.data import error_case
from unirouter_jax.data import locate


def _frame(seed, n=30):
  """Texts with newlines, quotes and commas; ``value`` is unique per row."""
  rng = np.random.default_rng(seed)
  parts = ["a", "b,c", '"q"', "\n", "\r\n", " "]
  texts = ["".join(rng.choice(parts, 6)) + f"t{i}" for i in range(n)]
  return pd.DataFrame({
      "text": texts,
      "value": [f"v{i}x" for i in range(n)],
      "after": texts[::-1],
  })


class LocateTest(error_case.ErrorCase):

  @parameterized.parameters(0, 1, 2)
  def test_csv_line_holds_the_field(self, seed):
    df = _frame(seed)
    path = self.make_dir() / "f.csv"
    df.to_csv(path, index=False)
    back = pd.read_csv(path, keep_default_na=False)
    self.assertEqual(back["value"].tolist(), df["value"].tolist())
    lines = path.read_text().splitlines()
    where = locate.locator(path)
    for r in range(len(df)):
      got = where(r, "value")
      self.assertEqual(set(got), {"file", "line"})
      self.assertIn(f"v{r}x", lines[got["line"] - 1])
      # Without a column: the record's first line, which holds its start.
      start = where(r)["line"]
      self.assertLessEqual(start, got["line"])

  def test_jsonl_and_json_array(self):
    d = self.make_dir()
    recs = [{"id": i, "scores": {"a": i, "b": f"v{i}x"}} for i in range(5)]
    jsonl = self.write("f.jsonl", "\n\n".join(json.dumps(r) for r in recs), d)
    arr = self.write("f.json", json.dumps(recs, indent=2), d)
    for path, field in ((jsonl, None), (arr, ("scores", "b"))):
      lines = path.read_text().splitlines()
      where = locate.locator(path)
      for r in range(5):
        self.assertIn(f"v{r}x", lines[where(r, field)["line"] - 1])

  def test_files_without_lines_give_the_row(self):
    path = self.make_dir() / "f.pkl"
    pd.DataFrame({"a": [1, 2]}).to_pickle(path)
    self.assertEqual(
        locate.locator(path, [1, 0])(0), {"file": str(path), "row": 2}
    )

  def test_concat_maps_to_the_right_file(self):
    a = locate.fixed(file="a")
    b = locate.locator("b.pkl")
    where = locate.concat([a, b], [2, 3])
    self.assertEqual(where(1), {"file": "a"})
    self.assertEqual(where(2), {"file": "b.pkl", "row": 1})
    self.assertEqual(where(4), {"file": "b.pkl", "row": 3})


if __name__ == "__main__":
  absltest.main()

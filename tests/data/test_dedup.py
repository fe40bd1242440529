"""Duplicate prompts: user files keep every row unless ``dedup=True``.

Bundled sets merge repeated texts (their published numbers); either way the
counts are in ``provenance["dedup"]`` and an embeddings file with one row per
prompt of the data file is accepted.
"""

import numpy as np
from absl.testing import absltest, parameterized

from tests.data import error_case
from unirouter_jax import data

N = 150
DUP_OF = {77: 10}  # row 77 repeats the text of row 10


def _wide_csv(n=N, dup_of=None, unlabelled=(), seed=0):
  """A wide CSV of ``n`` rows; ``dup_of[i] = j``: row i has row j's text."""
  dup_of = DUP_OF if dup_of is None else dup_of
  rng = np.random.default_rng(seed)
  lines = ["prompt_id,prompt,a,b,a|total_cost,b|total_cost"]
  for i in range(n):
    text = f"prompt {dup_of.get(i, i)}"
    qa, qb = ("", "") if i in unlabelled else rng.integers(0, 2, 2).tolist()
    lines.append(f"p{i},{text},{qa},{qb},0.1,{1 + i / n}")
  return "\n".join(lines) + "\n"


def _counts(ds):
  """The dedup report without its id lists."""
  report = ds.provenance["dedup"]
  return {k: v for k, v in report.items() if not isinstance(v, list)}


class DedupPolicyTest(error_case.ErrorCase):

  def setUp(self):
    super().setUp()
    self.csv = self.write("mine.csv", _wide_csv())
    # Row i of the embeddings file is [i, i]: selections are checkable.
    self.npy = self.make_dir() / "emb.npy"
    np.save(self.npy, np.repeat(np.arange(N, dtype=np.float32)[:, None], 2, 1))

  def test_user_file_keeps_every_row_by_default(self):
    ds = data.load(self.csv)
    self.assertEqual(ds.num_prompts, N)
    self.assertEqual(
        _counts(ds),
        {
            "policy": "keep",
            "rows": 150,
            "kept": 150,
            "dropped": 0,
            "duplicate_text_rows": 1,
            "dropped_duplicate_text": 0,
            "dropped_unlabeled": 0,
            "duplicate_ids": "error",
            "renamed": 0,
        },
    )
    self.assertEqual(ds.provenance["dedup"]["duplicate_text_ids"], ["p77"])
    np.testing.assert_array_equal(ds.source_row_n, np.arange(N))

  def test_dedup_true_merges_into_the_first_copy(self):
    ds = data.load(self.csv, dedup=True)
    self.assertEqual(ds.num_prompts, N - 1)
    self.assertNotIn("p77", ds.prompt_ids.tolist())
    self.assertIn("p10", ds.prompt_ids.tolist())
    counts = _counts(ds)
    self.assertEqual(
        (counts["policy"], counts["rows"], counts["kept"], counts["dropped"]),
        ("merge", 150, 149, 1),
    )
    self.assertEqual(counts["duplicate_text_rows"], 1)
    self.assertEqual(counts["dropped_duplicate_text"], 1)
    self.assertEqual(len(set(ds.prompts.tolist())), N - 1)

  @parameterized.parameters(None, False, True)
  def test_150_row_embeddings_follow_the_file(self, dedup):
    ds = data.load(self.csv, dedup=dedup)
    emb = data.load_embeddings_npy(self.npy, ds)
    self.assertEqual(emb.shape, (ds.num_prompts, 2))
    self.assertEqual(emb.dtype, np.float32)
    # Row of prompt "p<i>" is the file's row i (exact: small integers).
    expect = [float(pid[1:]) for pid in ds.prompt_ids]
    np.testing.assert_array_equal(emb[:, 0], expect)

  def test_dataset_sized_embeddings_accepted_too(self):
    ds = data.load(self.csv, dedup=True)
    path = self.make_dir() / "e.npy"
    np.save(path, np.ones((N - 1, 3), np.float32))
    self.assertEqual(data.load_embeddings_npy(path, ds).shape, (N - 1, 3))

  def test_wrong_count_names_both_expected_counts(self):
    ds = data.load(self.csv, dedup=True)
    path = self.make_dir() / "e.npy"
    np.save(path, np.ones((148, 3), np.float32))
    self.assert_error(
        lambda: data.load_embeddings_npy(path, ds),
        f"file {path}: 148 embedding rows, expected 150 (one per prompt of "
        f"{self.csv}, in file order) or 149 (one per prompt of the loaded "
        "dataset)",
    )

  def test_non_finite_row_quotes_the_file_row(self):
    ds = data.load(self.csv, dedup=True)
    emb = np.ones((N, 2), np.float32)
    emb[100] = np.inf  # file row 101 is prompt p100
    path = self.make_dir() / "e.npy"
    np.save(path, emb)
    self.assert_error(
        lambda: data.load_embeddings_npy(path, ds),
        f"file {path}, row 101 (prompt id 'p100'): non-finite embedding",
    )
    emb[100], emb[77] = 1.0, np.nan  # a merged row is not read
    np.save(path, emb)
    self.assertTrue(np.isfinite(data.load_embeddings_npy(path, ds)).all())

  def test_unlabelled_rows_dropped_and_counted(self):
    csv = self.write("u.csv", _wide_csv(dup_of={}, unlabelled=(3, 4)))
    ds = data.load(csv)
    self.assertEqual(ds.num_prompts, N - 2)
    self.assertEqual(_counts(ds)["dropped_unlabeled"], 2)
    self.assertEqual(
        ds.provenance["dedup"]["dropped_unlabeled_ids"], ["p3", "p4"]
    )
    emb = data.load_embeddings_npy(self.npy, ds)
    np.testing.assert_array_equal(emb[2:4, 0], [2.0, 5.0])

  def test_subset_selects_the_file_rows(self):
    ds = data.load(self.csv).subset(prompt_idx=[5, 2])
    np.testing.assert_array_equal(
        data.load_embeddings_npy(self.npy, ds)[:, 0], [5.0, 2.0]
    )

  def test_long_format_keeps_ids_with_the_same_text(self):
    text = (
        "prompt_id,prompt,model,quality,cost\n"
        "p0,same,a,1,1\np1,same,a,0,1\np2,other,a,1,1\n"
    )
    path = self.write("long.csv", text)
    self.assertEqual(data.load(path).prompt_ids.tolist(), ["p0", "p1", "p2"])
    merged = data.load(path, dedup=True)
    self.assertEqual(merged.prompt_ids.tolist(), ["p0", "p2"])
    emb = self.make_dir() / "e.npy"  # one row per prompt id of the file
    np.save(emb, np.arange(3, dtype=np.float32)[:, None])
    np.testing.assert_array_equal(
        data.load_embeddings_npy(emb, merged)[:, 0], [0.0, 2.0]
    )

  def test_duplicate_ids_still_fail_under_keep(self):
    path = self.write(
        "ids.csv",
        _wide_csv(n=3, dup_of={}).replace("p2,prompt 2", "p0,prompt 0"),
    )
    self.assert_error(
        lambda: data.load(path),
        f"file {path}, line 4, column 'prompt_id': duplicate prompt id 'p0'",
        "p0,prompt 0",
    )
    # Merged as a repeated text first, as before: no clash left.
    self.assertEqual(data.load(path, dedup=True).num_prompts, 2)

  def test_routerbench_ids_renamed_and_reported(self):
    path = self.write(
        "rb.csv",
        "sample_id,prompt,eval_name,a,a|total_cost\n"
        "s0,x,arc,1,0.1\ns0,y,arc,0,0.1\n",
    )
    ds = data.load_routerbench(path)
    self.assertEqual(ds.prompt_ids.tolist(), ["s0", "s0#1"])
    dedup = ds.provenance["dedup"]
    self.assertEqual(dedup["duplicate_ids"], "suffix")
    self.assertEqual(
        (dedup["renamed"], dedup["renamed_duplicate_ids"]), (1, ["s0"])
    )

  @parameterized.parameters(0, 1, 2, 3)
  def test_merge_keeps_first_occurrences(self, seed):
    rng = np.random.default_rng(seed)
    n = 40
    origin = rng.integers(0, 12, n)  # text id of each row, many repeats
    dup_of = {i: int(origin[i]) for i in range(n)}
    path = self.write("r.csv", _wide_csv(n=n, dup_of=dup_of, seed=seed))
    kept = data.load(path)
    merged = data.load(path, dedup=True)
    _, first = np.unique(origin, return_index=True)
    np.testing.assert_array_equal(kept.source_row_n, np.arange(n))
    np.testing.assert_array_equal(merged.source_row_n, np.sort(first))
    for ds in (kept, merged):
      c = _counts(ds)
      self.assertEqual(c["rows"], n)
      self.assertEqual(c["kept"] + c["dropped"], n)
      self.assertEqual(c["kept"], ds.num_prompts)
      self.assertEqual(c["duplicate_text_rows"], n - first.shape[0])
    self.assertEqual(merged.num_prompts, first.shape[0])


if __name__ == "__main__":
  absltest.main()

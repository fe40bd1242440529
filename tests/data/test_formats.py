"""Upstream layouts (fixtures in tests/fixtures/data) and user formats."""

import pathlib
import shutil
import tempfile

import numpy as np
from absl.testing import absltest, parameterized

from unirouter_jax import data

FIX = pathlib.Path(__file__).parents[1] / "fixtures" / "data"


class UpstreamFormatsTest(parameterized.TestCase):

  def test_routerbench_pickle(self):
    ds = data.load(FIX / "routerbench_0shot.pkl")
    self.assertEqual((ds.num_prompts, ds.num_llms), (4, 3))
    self.assertEqual(ds.prompts[0], "Question 0?")  # list literal flattened
    self.assertEqual(ds.tasks.tolist(), ["arc-challenge"] * 3 + ["mbpp"])
    # cost = 0.001 * (j + 1) * (i + 1), exact up to float32 (rtol 1e-6).
    expect = 0.001 * np.outer(np.arange(1, 5), np.arange(1, 4))
    np.testing.assert_allclose(ds.cost_nm, expect, rtol=1e-6)
    self.assertTrue(ds.per_prompt_cost)
    self.assertNotIn("claude-v2|model_response", ds.llm_names)

  def test_embedllm(self):
    # openai/gpt-3.5-turbo has no parameter count: an error unless dropped.
    with self.assertRaisesRegex(data.DataError, "'openai/gpt-3.5-turbo'"):
      data.load(FIX / "embedllm")
    with self.assertWarnsRegex(UserWarning, "'openai/gpt-3.5-turbo'"):
      ds = data.load(FIX / "embedllm", drop_unpriced=True)
    self.assertEqual(ds.num_prompts, 4)
    self.assertEqual(ds.provenance["dropped_no_cost"], ["openai/gpt-3.5-turbo"])
    # Llama-2-13b and Yi-34B from the bundled table, Mistral v0.2 by name.
    np.testing.assert_array_equal(ds.cost_nm[0], [13.0, 7.0, 34.0])
    self.assertEqual(
        list(ds.provenance["cost_source"].values()), ["table", "name", "table"]
    )
    self.assertEqual(ds.cost_unit, "params_billion")
    # Repeated (prompt 1, model 0) rows 0 and 1: the max (1) is kept.
    self.assertEqual(ds.quality_nm[1, 0], 1.0)
    self.assertTrue(ds.label_mask_nm.all())

  def test_embedllm_cost_table_override(self):
    ds = data.load_embedllm(
        FIX / "embedllm", cost_table={"openai/gpt-3.5-turbo": 20.0}
    )
    self.assertEqual(ds.num_llms, 4)
    self.assertEqual(ds.cost_nm[0, 3], 20.0)
    self.assertFalse(ds.label_mask_nm[3, 3])  # no row for (3, 3)

  def test_sprout(self):
    ds = data.load(FIX / "sprout")
    self.assertEqual((ds.num_prompts, ds.num_llms), (6, 3))
    self.assertEqual(ds.prompt_ids.tolist(), [f"k{i}" for i in range(6)])
    # k0, gpt-4o: (100 * 2.5 + 10 * 10) / 1e6 USD (SPROUT price list).
    self.assertAlmostEqual(float(ds.cost_nm[0, 0]), 350e-6, delta=1e-9)
    self.assertFalse(ds.label_mask_nm[5, 2])  # the missing record
    # Missing record costs the mean of the LLM's recorded costs.
    self.assertAlmostEqual(
        float(ds.cost_nm[5, 2]), float(ds.cost_nm[:5, 2].mean()), delta=1e-9
    )
    self.assertEqual(ds.tasks[1], "mmlu-pro")


class UserFormatsTest(parameterized.TestCase):

  @parameterized.parameters("byod_long.csv", "byod_long.jsonl")
  def test_wide_and_long_agree(self, long_name):
    wide = data.load_wide_csv(FIX / "byod_wide.csv")
    long = data.load_long(FIX / long_name)
    self.assertEqual(wide.llm_names, long.llm_names)
    np.testing.assert_array_equal(wide.prompt_ids, long.prompt_ids)
    np.testing.assert_array_equal(wide.prompts, long.prompts)
    np.testing.assert_array_equal(wide.tasks, long.tasks)
    np.testing.assert_array_equal(wide.quality_nm, long.quality_nm)
    np.testing.assert_array_equal(wide.label_mask_nm, long.label_mask_nm)
    np.testing.assert_allclose(wide.cost_nm, long.cost_nm, rtol=1e-7)
    self.assertEqual(wide.per_prompt_cost, long.per_prompt_cost)

  def test_cost_table_file(self):
    ds = data.load_wide_csv(
        FIX / "byod_wide_nocost.csv", cost_table=FIX / "costs.csv"
    )
    self.assertFalse(ds.per_prompt_cost)
    np.testing.assert_allclose(ds.cost_nm, [[0.1, 2.0]] * 3, rtol=1e-6)
    self.assertFalse(ds.label_mask_nm[2, 0])

  def test_infer_format(self):
    self.assertEqual(
        data.load(FIX / "byod_wide.csv").provenance["format"], "wide"
    )
    self.assertEqual(
        data.load(FIX / "byod_long.csv").provenance["format"], "long"
    )

  def test_subset(self):
    ds = data.load(FIX / "routerbench_0shot.pkl")
    sub = ds.subset(prompt_idx=[3, 1], llm_idx=[2])
    self.assertEqual(sub.llm_names, ("claude-v2",))
    np.testing.assert_array_equal(sub.quality_nm[:, 0], [0.0, 0.0])
    self.assertEqual(
        sub.prompt_ids.tolist(), ["arc-challenge.val.3", "arc-challenge.val.1"]
    )
    sub.validate()

  def test_embeddings_npy(self):
    ds = data.load(FIX / "byod_wide.csv")
    tmp = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, tmp)
    path = pathlib.Path(tmp) / "emb.npy"
    np.save(path, np.ones((3, 4), np.float32))
    self.assertEqual(data.load_embeddings_npy(path, ds).shape, (3, 4))


if __name__ == "__main__":
  absltest.main()

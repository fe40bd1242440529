"""Bundled data sets load with the statistics in shared/data/README.md."""

import numpy as np
from absl.testing import absltest, parameterized

from unirouter_jax import data


def _mean(ds, llm, task=None):
  """Mean label of ``llm`` over labelled prompts (of ``task``)."""
  j = ds.llm_names.index(llm)
  rows = np.ones(ds.num_prompts, bool) if task is None else ds.tasks == task
  mask = ds.label_mask_nm[rows, j]
  return float(ds.quality_nm[rows, j][mask].mean())


class BundledTest(parameterized.TestCase):

  @parameterized.parameters(
      ("routerbench_subset", 3176, 11),  # 3,178 rows - 2 repeated texts
      ("llmrouter_dc", 5989, 9),  # 5,608 + 500 - 119 overlaps
      ("alpacaeval", 805, 53),  # 58 - 2 excluded - 3 without a cost
      ("alpacaeval_v1", 805, 50),
  )
  def test_shapes_and_invariants(self, name, n, m):
    ds = data.load(name)
    self.assertEqual((ds.num_prompts, ds.num_llms), (n, m))
    self.assertEqual(ds.quality_nm.shape, (n, m))
    self.assertEqual(ds.quality_nm.dtype, np.float32)
    self.assertEqual(len(set(ds.prompt_ids.tolist())), n)
    self.assertTrue(np.all(ds.cost_nm >= 0))
    self.assertTrue(ds.label_mask_nm.any(axis=0).all())
    self.assertTrue(ds.provenance["bundled"])
    self.assertIn("licence", ds.provenance)

  def test_routerbench_subset_statistics(self):
    ds = data.load("routerbench_subset")
    # README: gpt-4 0.96 on ARC, mistral-7b 0.67 (measured 0.954 and 0.670).
    self.assertAlmostEqual(
        _mean(ds, "gpt-4-1106-preview", "arc-challenge"), 0.96, delta=0.01
    )
    self.assertAlmostEqual(
        _mean(ds, "mistralai/mistral-7b-chat", "arc-challenge"),
        0.67,
        delta=0.005,
    )
    counts = {t: int((ds.tasks == t).sum()) for t in set(ds.tasks.tolist())}
    # 1,484 / 427 / 1,267 rows; two MBPP texts appear twice.
    self.assertEqual(
        counts, {"arc-challenge": 1484, "mbpp": 425, "winogrande": 1267}
    )
    self.assertTrue(ds.per_prompt_cost)
    mean_cost = dict(zip(ds.llm_names, ds.cost_nm.mean(axis=0), strict=True))
    # README: about 1e-4 USD (mistral-7b) to 5e-3 USD (gpt-4) per prompt.
    self.assertAlmostEqual(mean_cost["gpt-4-1106-preview"], 5e-3, delta=1e-3)
    self.assertLess(mean_cost["mistralai/mistral-7b-chat"], 2e-4)
    self.assertEqual(len(ds.provenance["dedup"]["renamed_duplicate_ids"]), 14)
    self.assertFalse(ds.prompts[0].startswith("['"))

  def test_bundled_sets_merge_repeated_texts(self):
    # The published numbers were computed on the merged set: a bundled set
    # keeps merging by default, and says so; dedup=False keeps all rows.
    ds = data.load("routerbench_subset")
    dedup = ds.provenance["dedup"]
    self.assertEqual(dedup["policy"], "merge")
    self.assertEqual(
        (dedup["rows"], dedup["duplicate_text_rows"], dedup["dropped"]),
        (3178, 2, 2),
    )
    full = data.load("routerbench_subset", dedup=False)
    self.assertEqual(full.num_prompts, 3178)
    self.assertEqual(full.provenance["dedup"]["policy"], "keep")
    for name in ("llmrouter_dc", "alpacaeval"):
      self.assertEqual(data.load(name).provenance["dedup"]["policy"], "merge")

  def test_llmrouter_dc(self):
    ds = data.load("llmrouter_dc")
    self.assertEqual(ds.provenance["train_test_overlap"], 119)
    self.assertEqual(len(set(ds.tasks.tolist())), 14)
    self.assertNotIn("unknown", set(ds.tasks.tolist()))
    self.assertTrue(ds.label_mask_nm.all())
    # Means measured on the deduplicated set (tolerance 0.005).
    self.assertAlmostEqual(
        _mean(ds, "llama-3.1-nemotron-51b-instruct"), 0.620, delta=0.005
    )
    self.assertAlmostEqual(
        _mean(ds, "llama3-chatqa-1.5-8b"), 0.174, delta=0.005
    )
    j70 = ds.llm_names.index("llama3-chatqa-1.5-70b")
    j8 = ds.llm_names.index("llama3-chatqa-1.5-8b")
    # 0.9 vs 0.2 USD/Mtok: the 70B model costs 4.5x the 8B one per query.
    np.testing.assert_allclose(
        ds.cost_nm[:, j70] / ds.cost_nm[:, j8], 4.5, rtol=1e-5
    )

  def test_alpacaeval(self):
    ds = data.load("alpacaeval")
    self.assertNotIn("NullModel", ds.llm_names)
    self.assertNotIn("gpt4_gamed", ds.llm_names)
    self.assertIn("CC BY-NC 4.0", ds.provenance["licence"])
    self.assertFalse(ds.per_prompt_cost)
    self.assertEqual(
        sorted(ds.provenance["dropped_no_cost"]),
        ["jina-chat", "text_davinci_001", "text_davinci_003"],
    )
    # gpt4_1106_preview is the reference: preference 1.5 on average.
    self.assertAlmostEqual(_mean(ds, "gpt4_1106_preview"), 0.5, delta=0.01)
    cost = dict(zip(ds.llm_names, ds.cost_nm[0], strict=True))
    self.assertGreater(cost["gpt4_1106_preview"], 10 * cost["vicuna-7b"])

  def test_alpacaeval_v1_zeros_missing(self):
    ds = data.load("alpacaeval_v1")
    self.assertFalse(ds.label_mask_nm.all())
    self.assertTrue(np.all(ds.quality_nm[~ds.label_mask_nm] == 0))

  def test_attach_costs_from_price_table(self):
    ds = data.load("routerbench_subset")
    out = data.attach_costs_from_price_table(
        ds,
        output_tokens=100.0,
        aliases={"claude-v2": "anthropic.claude-v2:1"},
        on_missing="drop",
    )
    self.assertIn("gpt-4-1106-preview", out.llm_names)
    self.assertIn("claude-v2", out.llm_names)
    self.assertEqual(
        out.provenance["price_table"]["version"], "litellm 1.110.2"
    )
    j = out.llm_names.index("gpt-4-1106-preview")
    tokens = np.ceil(len(out.prompts[0]) / 4)
    # gpt-4-1106-preview: 10 / 30 USD per Mtok in litellm 1.110.2.
    self.assertAlmostEqual(
        float(out.cost_nm[0, j]), (tokens * 10 + 100 * 30) / 1e6, delta=1e-9
    )
    dropped = out.provenance["price_table"]["dropped_unpriced_llms"]
    self.assertEqual(out.num_llms + len(dropped), ds.num_llms)


if __name__ == "__main__":
  absltest.main()

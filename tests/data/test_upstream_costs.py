"""Every LLM of the upstream EmbedLLM, RouterBench and SPROUT files gets a cost.

Small files in the exact upstream layouts (column names, dtypes; the
RouterBench pickle as upstream writes it, a pandas DataFrame) with the real
LLM names; an LLM without a cost is an error naming it and the file, or,
with ``drop_unpriced=True`` (EmbedLLM), a warning and a provenance entry.
"""

import json

import numpy as np
import pandas as pd
from absl.testing import absltest

from tests.data import embedllm_models, error_case
from unirouter_jax import data
from unirouter_jax.data import param_counts, prices

TABLE = param_counts.EMBEDLLM_PARAMS_FILE.name
# RouterBench's 11 LLMs (upstream column names, as in the bundled subset).
ROUTERBENCH_LLMS = (
    "WizardLM/WizardLM-13B-V1.2", "claude-instant-v1", "claude-v1",
    "claude-v2", "gpt-3.5-turbo-1106", "gpt-4-1106-preview",
    "meta/code-llama-instruct-34b-chat", "meta/llama-2-70b-chat",
    "mistralai/mistral-7b-chat", "mistralai/mixtral-8x7b-chat",
    "zero-one-ai/Yi-34B-Chat",
)  # fmt: skip
# SPROUT's 13 LLMs (upstream column names).
SPROUT_LLMS = (
    "aws-claude-3-5-sonnet-v1", "aws-titan-text-premier-v1", "openai-gpt-4o",
    "openai-gpt-4o-mini", "wxai-granite-3-2b-instruct-8k-max-tokens",
    "wxai-granite-3-8b-instruct-8k-max-tokens", "wxai-llama-3-1-70b-instruct",
    "wxai-llama-3-1-8b-instruct", "wxai-llama-3-2-1b-instruct",
    "wxai-llama-3-2-3b-instruct", "wxai-llama-3-3-70b-instruct",
    "wxai-llama-3-405b-instruct", "wxai-mixtral-8x7b-instruct-v01",
)  # fmt: skip


class ParamTableTest(absltest.TestCase):

  def test_covers_the_paper_list(self):
    table = param_counts.param_table()
    self.assertLen(table, 122)
    missing = [
        m
        for m in embedllm_models.PAPER_TABLE_2
        if param_counts.lookup(m, table) is None
    ]
    self.assertEqual(missing, [])
    for row in table.values():
      self.assertGreater(row.params_billion, 0, msg=row.model)
      self.assertRegex(row.source, r"^https://", msg=row.model)

  def test_the_names_that_do_not_parse(self):
    # 19 names carry no size the parser reads; each is in the table.
    unparsed = [
        m
        for m in embedllm_models.PAPER_TABLE_2
        if prices.params_billion(m) is None
    ]
    self.assertLen(unparsed, 19)
    expect = {
        "microsoft/phi-2": 2.7,
        "microsoft/phi-1.5": 1.3,
        "bigcode/octocoder": 15.5,
        "bigscience/bloom-7b1": 7.1,
        "openchat/openchat-3.5": 7.0,
        "openchat/openchat-3.5-0106": 7.0,
        "JaeyeonKang/CCK-Asura-v1": 70.0,
        "zhengr/MixTAO-7Bx2-MoE-v8.1": 12.9,
    }
    for name, size in expect.items():
      self.assertEqual(param_counts.lookup(name).params_billion, size, name)

  def test_agrees_with_the_names_except_mixtures(self):
    # Where the name has a size, the table has the same, except for
    # mixtures of experts (total, not experts x size).
    differ = {
        m: (prices.params_billion(m), param_counts.lookup(m).params_billion)
        for m in embedllm_models.PAPER_TABLE_2
        if prices.params_billion(m) not in (None, param_counts.lookup(m)[1])
    }
    self.assertEqual(
        differ,
        {
            "mistralai/Mixtral-8x7B-Instruct-v0.1": (56.0, 46.7),
            "Plaban81/Moe-4x7b-math-reason-code": (28.0, 24.2),
        },
    )

  def test_spellings_match(self):
    for name in (
        "microsoft__phi-1_5",
        "microsoft/phi-1.5",
        "Microsoft/Phi-1_5",
        " microsoft/phi-1-5 ",
    ):
      self.assertEqual(
          param_counts.lookup(name).model, "microsoft/phi-1_5", name
      )
    self.assertIsNone(param_counts.lookup("microsoft/phi-3"))


class ParamTableErrorsTest(error_case.ErrorCase):

  def test_bad_rows(self):
    head = "model,params_billion,source\na/x-7b,7,https://a\n"
    for row, message, token in (
        ("b/y,0,https://b", " (model 'b/y'), column 'params_billion': "
         "parameter count 0 is not > 0 and finite", "b/y,0"),
        ("b/y,,https://b", " (model 'b/y'), column 'params_billion': "
         "missing parameter count", "b/y,,"),
        ("b/y,big,https://b", ", column 'params_billion': not a number: "
         "'big'", "big"),
        ("b/y,3,", " (model 'b/y'), column 'source': no source for the "
         "parameter count", "b/y,3,"),
        ("A/X_7b,7,https://c", " (model 'A/X_7b'), column 'model': second "
         "row for the model 'a/x-7b'", "A/X_7b"),
    ):  # fmt: skip
      with self.subTest(message):
        path = self.write("t.csv", head + row + "\n")
        self.assert_error(
            lambda p=path: param_counts.param_table(str(p)),
            f"file {path}, line 3{message}",
            token,
        )

  def test_missing_column(self):
    path = self.write("t.csv", "model,params_billion\na,1\n")
    self.assert_error(
        lambda: param_counts.param_table(str(path)),
        f"file {path}, column 'source': missing column",
    )


class EmbedLLMCostsTest(error_case.ErrorCase):
  """Upstream layout: question_order, model_order and the three splits."""

  def _folder(self, names):
    d = self.make_dir()
    prompts = ["What is 2+2?", "Name a prime.", "Capital of France?"]
    pd.DataFrame({"prompt_id": range(3), "prompt": prompts}).to_csv(
        d / "question_order.csv", index=False
    )
    pd.DataFrame({"model_id": range(len(names)), "model_name": names}).to_csv(
        d / "model_order.csv", index=False
    )
    rng = np.random.default_rng(0)
    # Upstream rows carry category and model_name beside the README's
    # model_id, prompt_id, prompt, label (0/1 ints).
    for split, pid in (("train", 0), ("val", 1), ("test", 2)):
      pd.DataFrame({
          "prompt_id": pid,
          "model_id": range(len(names)),
          "category": "mmlu",
          "label": rng.integers(0, 2, len(names)),
          "prompt": prompts[pid],
          "model_name": names,
      }).to_csv(d / f"{split}.csv", index=False)
    return d

  def test_every_upstream_llm_gets_a_cost(self):
    names = [
        embedllm_models.upstream_name(m) for m in embedllm_models.PAPER_TABLE_2
    ]
    d = self._folder(names)
    ds = data.load(d)  # inferred: embedllm
    self.assertEqual(ds.llm_names, tuple(names))
    self.assertEqual(ds.provenance["dropped_no_cost"], [])
    self.assertEqual(set(ds.provenance["cost_source"].values()), {"table"})
    cost = dict(zip(ds.llm_names, ds.cost_nm[0].tolist(), strict=True))
    # float32 costs: compare with rtol 1e-6.
    for name, size in (
        ("microsoft__phi-1_5", 1.3),
        ("microsoft__phi-2", 2.7),
        ("bigcode__octocoder", 15.5),
        ("openchat__openchat_3.5", 7.0),
        ("mistralai__Mixtral-8x7B-Instruct-v0.1", 46.7),
        ("meta-llama__Llama-2-70b-chat-hf", 70.0),
    ):
      np.testing.assert_allclose(cost[name], size, rtol=1e-6, err_msg=name)
    self.assertEqual(ds.cost_unit, "params_billion")

  def test_unpriced_llm_is_an_error_naming_it(self):
    names = ["meta-llama__Llama-2-7b-chat-hf", "acme__mystery", "acme__x"]
    d = self._folder(names)
    self.assert_error(
        lambda: data.load_embedllm(d),
        f"file {d / 'model_order.csv'}, line 3 (model 'acme__mystery'), "
        "column 'model_name': no parameter count for this LLM: not in "
        f"cost_table or {TABLE}, no size in its name (also without one: "
        "'acme__x'); pass cost_table={name: billions} or drop_unpriced=True",
        "acme__mystery",
    )

  def test_drop_unpriced_warns_and_lists(self):
    d = self._folder(["acme__mystery", "google__gemma-2b-it"])
    with self.assertWarnsRegex(
        UserWarning, "dropped 1 LLM without.*'acme__mystery'"
    ):
      ds = data.load(d, drop_unpriced=True)
    self.assertEqual(ds.llm_names, ("google__gemma-2b-it",))
    self.assertEqual(ds.provenance["dropped_no_cost"], ["acme__mystery"])
    np.testing.assert_array_equal(ds.cost_nm[:, 0], 2.0)

  def test_all_unpriced(self):
    d = self._folder(["acme__mystery"])
    self.assert_error(
        lambda: data.load_embedllm(d, drop_unpriced=True),
        f"file {d / 'model_order.csv'}: no LLM has a cost",
    )

  def test_cost_table_first_then_table_then_name(self):
    d = self._folder(["microsoft__phi-2", "acme__thing-3b", "acme__mystery"])
    ds = data.load_embedllm(d, cost_table={"acme__mystery": 0.5})
    np.testing.assert_allclose(ds.cost_nm[0], [2.7, 3.0, 0.5], rtol=1e-6)
    self.assertEqual(
        ds.provenance["cost_source"],
        {
            "microsoft__phi-2": "table",
            "acme__thing-3b": "name",
            "acme__mystery": "cost_table",
        },
    )
    with self.assertRaisesRegex(
        data.DataError, r"'acme__thing-3b'.*not in cost_table"
    ):
      data.load_embedllm(d, parse_names=False)


class RouterBenchCostsTest(error_case.ErrorCase):
  """The upstream pickle: a pandas DataFrame, one column per LLM and field."""

  def _frame(self, n=3):
    rows = []
    for i in range(n):
      r = {
          "sample_id": f"mmlu-astronomy.val.{i}",
          "prompt": str([f"Question {i}?"]),
          "eval_name": "mmlu-astronomy",
      }
      for j, llm in enumerate(ROUTERBENCH_LLMS):
        r[llm] = float((i + j) % 2)
        r[f"{llm}|model_response"] = f"answer {i}"
        r[f"{llm}|total_cost"] = 1e-5 * (j + 1)
      r["oracle_model_to_route_to"] = ROUTERBENCH_LLMS[0]
      rows.append(r)
    return pd.DataFrame(rows)

  def test_every_llm_gets_its_cost(self):
    path = self.make_dir() / "routerbench_0shot.pkl"
    self._frame().to_pickle(path)
    ds = data.load(path)
    self.assertEqual(ds.llm_names, ROUTERBENCH_LLMS)
    np.testing.assert_allclose(
        ds.cost_nm[0], 1e-5 * np.arange(1, 12), rtol=1e-6
    )

  def test_llm_without_cost_column(self):
    path = self.make_dir() / "routerbench_0shot.pkl"
    self._frame().drop(columns="claude-v1|total_cost").to_pickle(path)
    self.assert_error(
        lambda: data.load(path),
        f"file {path}, column 'claude-v1|total_cost': missing cost column",
    )


class SproutCostsTest(error_case.ErrorCase):

  def test_price_list_covers_the_upstream_llms(self):
    self.assertEqual(sorted(prices.sprout_prices()), sorted(SPROUT_LLMS))

  def _line(self, key, llms):
    row = {
        "key": key,
        "dataset": "mmlu-pro",
        "dataset_level": None,
        "dataset_idx": 0,
        "prompt": f"text {key}",
        "golden_answer": "A",
    }
    for llm in llms:
      row[llm] = {
          "score": 1.0,
          "num_input_tokens": 100,
          "num_output_tokens": 10,
          "response": "A",
      }
    return json.dumps(row)

  def test_every_llm_gets_a_cost(self):
    d = self.make_dir()
    lines = [self._line(f"k{i}", SPROUT_LLMS) for i in range(2)]
    self.write("train-00000-of-00001.jsonl", "\n".join(lines) + "\n", d)
    ds = data.load_sprout(d)
    self.assertEqual(ds.llm_names, SPROUT_LLMS)
    pin, pout = prices.sprout_prices()["openai-gpt-4o"]
    j = ds.llm_names.index("openai-gpt-4o")
    self.assertAlmostEqual(
        float(ds.cost_nm[0, j]), (100 * pin + 10 * pout) / 1e6, delta=1e-9
    )

  def test_unpriced_llm_named(self):
    d = self.make_dir()
    llms = (*SPROUT_LLMS, "openai-o3-mini")
    path = self.write(
        "train-00000-of-00001.jsonl", self._line("k0", llms) + "\n", d
    )
    self.assert_error(
        lambda: data.load_sprout(d),
        f"file {path}, column 'openai-o3-mini': LLM not in the SPROUT price "
        "list (pass prices=)",
    )


if __name__ == "__main__":
  absltest.main()

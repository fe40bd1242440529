"""User files: a bad input fails with one exact message naming the file, the
1-based line (as an editor shows it), the prompt id and the column.

Each case also checks that the line quoted holds the bad value (``token``).
"""

import gzip

import numpy as np
from absl.testing import absltest, parameterized

from tests.data import error_case
from unirouter_jax import data
from unirouter_jax.data import prices

GOOD_WIDE = (
    "prompt_id,prompt,a,b,a|total_cost,b|total_cost\n"  # line 1
    "p0,x,1,0,0.1,1\n"  # line 2
    "p1,y,0.5,1,0.1,1\n"  # line 3
    "p2,z,0,1,0.1,1\n"  # line 4
)
GOOD_LONG = (
    "prompt_id,prompt,model,quality,cost\n"  # line 1
    "p0,x,a,1,0.1\n"  # line 2
    "p0,x,b,0,1\n"  # line 3
    "p1,y,a,0.5,0.1\n"  # line 4
    "p1,y,b,1,1\n"  # line 5
)
COSTS = "; costs must be finite and >= 0"


class UserFileErrorsTest(error_case.ErrorCase):

  def test_good_inputs_load(self):
    self.assertEqual(
        data.load_wide_csv(self.write("w.csv", GOOD_WIDE)).num_llms, 2
    )
    self.assertEqual(
        data.load_long(self.write("l.csv", GOOD_LONG)).num_prompts, 2
    )

  @parameterized.named_parameters(
      (
          "missing_prompt_column",
          GOOD_WIDE.replace("prompt,", "text,", 1),
          ", column 'prompt': missing column",
          None,
      ),
      (
          "llm_without_labels",
          GOOD_WIDE.replace(",1,0.1,1\n", ",,0.1,1\n").replace(
              ",0,0.1,1\n", ",,0.1,1\n"
          ),
          ", column 'b': LLM has no labels",
          None,
      ),
      (
          "label_above_one",  # a plain number, not np.float64(1.5)
          GOOD_WIDE.replace("p1,y,0.5", "p1,y,1.5"),
          ", line 3 (prompt id 'p1'), column 'a': label 1.5 outside [0, 1]",
          "1.5",
      ),
      (
          "label_below_zero",
          GOOD_WIDE.replace("p2,z,0,1", "p2,z,-1,1"),
          ", line 4 (prompt id 'p2'), column 'a': label -1 outside [0, 1]",
          "-1",
      ),
      (
          "label_just_above_one",  # not rounded to "1"
          GOOD_WIDE.replace("p2,z,0,1", "p2,z,0,1.0000001"),
          (
              ", line 4 (prompt id 'p2'), column 'b': label 1.0000001 outside "
              "[0, 1]"
          ),
          "1.0000001",
      ),
      (
          "label_not_a_number",
          GOOD_WIDE.replace("p1,y,0.5", "p1,y,good"),
          ", line 3 (prompt id 'p1'), column 'a': not a number: 'good'",
          "good",
      ),
      (
          "cost_missing",
          GOOD_WIDE.replace("p1,y,0.5,1,0.1,1", "p1,y,0.5,1,,1"),
          ", line 3 (prompt id 'p1'), column 'a|total_cost': cost missing"
          + COSTS,
          "p1,y,0.5,1,,1",
      ),
      (
          "cost_negative",
          GOOD_WIDE.replace("p2,z,0,1,0.1,1", "p2,z,0,1,0.1,-1"),
          ", line 4 (prompt id 'p2'), column 'b|total_cost': cost invalid (-1)"
          + COSTS,
          "-1",
      ),
      (
          "cost_column_missing",
          GOOD_WIDE.replace(",b|total_cost", "").replace(",1\n", "\n"),
          ", column 'b|total_cost': missing cost column",
          None,
      ),
      (
          "no_costs_at_all",
          "prompt,a\nx,1\n",
          (
              ", column 'a|total_cost': no costs: add '<LLM>|total_cost'"
              " columns or pass cost_table="
          ),
          None,
      ),
      (
          "duplicate_prompt_id",
          GOOD_WIDE.replace("p1,y", "p0,y"),
          ", line 3, column 'prompt_id': duplicate prompt id 'p0'",
          "p0,y",
      ),
      (
          "missing_prompt_text",
          GOOD_WIDE.replace("p1,y,", "p1,,"),
          ", line 3 (prompt id 'p1'), column 'prompt': missing prompt text",
          "p1,,",
      ),
      (
          "no_id_column",  # row-number ids are not quoted
          "prompt,a,a|total_cost\nx,1,0.1\ny,2,0.1\n",
          ", line 3, column 'a': label 2 outside [0, 1]",
          "y,2",
      ),
      (
          "blank_lines_counted",
          GOOD_WIDE.replace("p0,x", "\np0,x").replace("p1,y,0.5", "\np1,y,7"),
          ", line 5 (prompt id 'p1'), column 'a': label 7 outside [0, 1]",
          "p1,y,7",
      ),
      (
          "value_after_a_multiline_prompt",
          GOOD_WIDE.replace("p1,y,0.5,1", 'p1,"two\nlines, ""quoted""",0.5,9'),
          ", line 4 (prompt id 'p1'), column 'b': label 9 outside [0, 1]",
          ",9,",
      ),
      (
          "id_after_a_multiline_prompt",
          (
              "prompt,prompt_id,a,a|total_cost\n"
              '"one\ntwo\nthree",p0,1,1\n'
              "x,p0,1,1\n"
          ),
          ", line 5, column 'prompt_id': duplicate prompt id 'p0'",
          "x,p0",
      ),
      (
          "header_only",
          GOOD_WIDE.splitlines()[0] + "\n",
          ": no rows (empty file)",
          None,
      ),
      ("empty_file", "", ": empty file", None),
  )
  def test_wide(self, text, rest, token):
    path = self.write("mine.csv", text)
    self.assert_error(
        lambda: data.load_wide_csv(path), f"file {path}{rest}", token
    )

  def test_wide_gzip(self):
    path = self.make_dir() / "mine.csv.gz"
    with gzip.open(path, "wt") as f:
      f.write(GOOD_WIDE.replace("p2,z,0,1", "p2,z,0,3"))
    err = self.assert_error(
        lambda: data.load(path),
        f"file {path}, line 4 (prompt id 'p2'), column 'b': label 3 outside "
        "[0, 1]",
    )
    self.assertEqual(err.line, 4)

  @parameterized.named_parameters(
      (
          "missing_quality",
          GOOD_LONG.replace(",quality,", ",score,"),
          ", column 'quality': missing column",
          None,
      ),
      (
          "label_outside",
          GOOD_LONG.replace("p1,y,a,0.5", "p1,y,a,2"),
          ", line 4 (prompt id 'p1'), column 'quality': label 2 outside [0, 1]",
          "p1,y,a,2",
      ),
      (
          "label_not_a_number",
          GOOD_LONG.replace("p0,x,b,0", "p0,x,b,zero"),
          ", line 3 (prompt id 'p0'), column 'quality': not a number: 'zero'",
          "zero",
      ),
      (
          "negative_cost",
          GOOD_LONG.replace("p1,y,b,1,1", "p1,y,b,1,-3"),
          ", line 5 (prompt id 'p1'), column 'cost': cost invalid (-3)" + COSTS,
          "-3",
      ),
      (
          "missing_cost",
          GOOD_LONG.replace("p0,x,b,0,1", "p0,x,b,0,"),
          ", line 3 (prompt id 'p0'), column 'cost': cost missing" + COSTS,
          "p0,x,b,0,",
      ),
      (
          "cost_not_a_number",
          GOOD_LONG.replace("p0,x,b,0,1", "p0,x,b,0,cheap"),
          ", line 3 (prompt id 'p0'), column 'cost': not a number: 'cheap'",
          "cheap",
      ),
      (
          "duplicate_pair",
          GOOD_LONG.replace("p1,y,b", "p1,y,a"),
          (
              ", line 5, column 'model': second label for prompt 'p1' and"
              " model 'a'"
          ),
          "p1,y,a,1",
      ),
      (
          "id_with_two_texts",
          GOOD_LONG.replace("p1,y,b", "p1,w,b"),
          (
              ", line 5 (prompt id 'p1'), column 'prompt': the prompt text"
              " differs from the one on line 4"
          ),
          "p1,w",
      ),
      (
          "llm_without_labels",
          GOOD_LONG.replace("b,0,", "b,,").replace("b,1,", "b,,"),
          ", column 'b': LLM has no labels",
          None,
      ),
      (
          "no_costs",
          "prompt_id,prompt,model,quality\np0,x,a,1\n",
          ", column 'cost': no costs: add a 'cost' column or pass cost_table=",
          None,
      ),
      ("empty_file", "", ": empty file", None),
  )
  def test_long(self, text, rest, token):
    path = self.write("mine.csv", text)
    self.assert_error(lambda: data.load_long(path), f"file {path}{rest}", token)

  def test_long_jsonl_bad_label_after_a_blank_line(self):
    path = self.write(
        "mine.jsonl",
        '{"prompt_id": "p0", "prompt": "x", "model": "a", "quality": 1, "cost":'
        ' 1}\n\n{"prompt_id": "p1", "prompt": "y", "model": "a", "quality": 7,'
        ' "cost": 1}\n',
    )
    self.assert_error(
        lambda: data.load(path),
        f"file {path}, line 3 (prompt id 'p1'), column 'quality': label 7 "
        "outside [0, 1]",
        '"quality": 7',
    )

  def test_cost_table_file_bad_cost(self):
    wide = self.write("mine.csv", "prompt,a,b\nx,1,0\n")
    table = self.write("costs.csv", "model,cost\na,1\nb,-2\n")
    self.assert_error(
        lambda: data.load_wide_csv(wide, cost_table=table),
        f"file {table}, line 3 (model 'b'), column 'cost': cost invalid (-2)"
        + COSTS,
        "b,-2",
    )

  def test_cost_table_file_not_a_number(self):
    wide = self.write("mine.csv", "prompt,a\nx,1\n")
    table = self.write("costs.csv", "model,cost\na,free\n")
    self.assert_error(
        lambda: data.load_wide_csv(wide, cost_table=table),
        f"file {table}, line 2, column 'cost': not a number: 'free'",
        "free",
    )

  def test_cost_table_mapping_errors(self):
    path = self.write("mine.csv", "prompt,a,b\nx,1,0\n")
    self.assert_error(
        lambda: data.load_wide_csv(path, cost_table={"a": 1.0}),
        f"file {path}, column 'b': LLM missing from the cost table",
    )
    self.assert_error(
        lambda: data.load_wide_csv(path, cost_table={"a": "x", "b": 1}),
        "cost_table: cost 'x' of 'a' is not a number",
    )
    self.assert_error(
        lambda: data.load_wide_csv(path, cost_table={"a": -1, "b": 1}),
        f"file {path}, column 'a': cost invalid (-1)" + COSTS,
    )

  def test_price_table_bad_price(self):
    path = self.write(
        "prices.csv",
        "model,mode,usd_per_mtok_input,usd_per_mtok_output\n"
        "m1,chat,1,2\nm2,chat,-1,2\n",
    )
    self.assert_error(
        lambda: prices.price_table(str(path)),
        f"file {path}, line 3 (model 'm2'), column 'usd_per_mtok_input': cost "
        "invalid (-1)"
        + COSTS,
        "m2,chat,-1",
    )

  def test_unknown_name_lists_bundled(self):
    with self.assertRaises(data.DataError) as cm:
      data.load("routerbench_full")
    msg = str(cm.exception)
    self.assertEqual(len(msg.splitlines()), 1)
    for name in data.BUNDLED:
      self.assertIn(name, msg)


class EmbeddingErrorsTest(error_case.ErrorCase):

  def setUp(self):
    super().setUp()
    self.csv = self.write("w.csv", GOOD_WIDE)
    self.ds = data.load_wide_csv(self.csv)

  def _npy(self, arr):
    path = self.make_dir() / "emb.npy"
    np.save(path, arr)
    return path

  def test_count_mismatch_names_file_count_and_expected(self):
    path = self._npy(np.zeros((2, 8), np.float32))
    self.assert_error(
        lambda: data.load_embeddings_npy(path, self.ds),
        f"file {path}: 2 embedding rows, expected 3 (one per prompt of "
        f"{self.csv}, in file order)",
    )

  def test_non_finite_row_is_1_based(self):
    emb = np.ones((3, 4), np.float32)
    emb[1, 2] = np.nan
    path = self._npy(emb)
    self.assert_error(
        lambda: data.load_embeddings_npy(path, self.ds),
        f"file {path}, row 2 (prompt id 'p1'): non-finite embedding",
    )

  def test_not_a_matrix(self):
    path = self._npy(np.zeros(3, np.float32))
    self.assert_error(
        lambda: data.load_embeddings_npy(path, self.ds),
        f"file {path}: expected a [n, d] array, got shape (3,)",
    )

  def test_not_numbers(self):
    path = self._npy(np.array([["a"], ["b"], ["c"]]))
    self.assert_error(
        lambda: data.load_embeddings_npy(path, self.ds),
        f"file {path}: expected a float array, got dtype <U1",
    )


if __name__ == "__main__":
  absltest.main()

"""Bad inputs fail with a DataError naming the file, the column and the row."""

import pathlib
import shutil
import tempfile

import numpy as np
from absl.testing import absltest, parameterized

from unirouter_jax import data

GOOD_WIDE = (
    "prompt_id,prompt,a,b,a|total_cost,b|total_cost\n"
    "p0,x,1,0,0.1,1\n"
    "p1,y,0.5,1,0.1,1\n"
    "p2,z,0,1,0.1,1\n"
)
GOOD_LONG = (
    "prompt_id,prompt,model,quality,cost\n"
    "p0,x,a,1,0.1\n"
    "p0,x,b,0,1\n"
    "p1,y,a,0.5,0.1\n"
    "p1,y,b,1,1\n"
)


class ErrorsTest(parameterized.TestCase):

  def _write(self, name, text):
    tmp = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, tmp)
    path = pathlib.Path(tmp) / name
    path.write_text(text)
    return path

  def _assert_error(self, fn, path, *parts):
    with self.assertRaises(data.DataError) as cm:
      fn(path)
    msg = str(cm.exception)
    self.assertIsInstance(cm.exception, ValueError)
    self.assertIn(path.name, msg)
    for p in parts:
      self.assertIn(p, msg)

  def test_good_inputs_load(self):
    self.assertEqual(
        data.load_wide_csv(self._write("w.csv", GOOD_WIDE)).num_llms, 2
    )
    self.assertEqual(
        data.load_long(self._write("l.csv", GOOD_LONG)).num_prompts, 2
    )

  @parameterized.named_parameters(
      (
          "missing_prompt_column",
          GOOD_WIDE.replace("prompt,", "text,", 1),
          "column 'prompt'",
          "missing column",
      ),
      (
          "llm_without_labels",
          GOOD_WIDE.replace(",1,0.1,1\n", ",,0.1,1\n").replace(
              ",0,0.1,1\n", ",,0.1,1\n"
          ),
          "column 'b'",
          "no labels",
      ),
      (
          "label_above_one",
          GOOD_WIDE.replace("p1,y,0.5", "p1,y,1.5"),
          "column 'a'",
          "row 1",
          "label 1.5 outside [0, 1]",  # a plain number, not np.float64(1.5)
      ),
      (
          "label_below_zero",
          GOOD_WIDE.replace("p2,z,0,1", "p2,z,-1,1"),
          "column 'a'",
          "row 2",
      ),
      (
          "label_not_a_number",
          GOOD_WIDE.replace("p1,y,0.5", "p1,y,good"),
          "column 'a'",
          "row 1",
          "not a number",
      ),
      (
          "cost_missing",
          GOOD_WIDE.replace("p1,y,0.5,1,0.1,1", "p1,y,0.5,1,,1"),
          "column 'a|total_cost'",
          "row 1",
          "missing",
      ),
      (
          "cost_negative",
          GOOD_WIDE.replace("p2,z,0,1,0.1,1", "p2,z,0,1,0.1,-1"),
          "column 'b|total_cost'",
          "row 2",
          "cost invalid (-1)",
      ),
      (
          "cost_column_missing",
          GOOD_WIDE.replace(",b|total_cost", "").replace(",1\n", "\n"),
          "column 'b|total_cost'",
      ),
      (
          "no_costs_at_all",
          "prompt,a\nx,1\n",
          "column 'a|total_cost'",
          "no costs",
      ),
      (
          "duplicate_prompt_id",
          GOOD_WIDE.replace("p1,y", "p0,y"),
          "column 'prompt_id'",
          "row 1",
          "duplicate prompt id",
      ),
      ("header_only", GOOD_WIDE.splitlines()[0] + "\n", "no rows"),
      ("empty_file", "", "empty"),
  )
  def test_wide(self, text, *parts):
    self._assert_error(
        data.load_wide_csv, self._write("mine.csv", text), *parts
    )

  @parameterized.named_parameters(
      (
          "missing_quality",
          GOOD_LONG.replace(",quality,", ",score,"),
          "column 'quality'",
      ),
      (
          "label_outside",
          GOOD_LONG.replace("p1,y,a,0.5", "p1,y,a,2"),
          "column 'quality'",
          "row 2",
      ),
      (
          "negative_cost",
          GOOD_LONG.replace("p1,y,b,1,1", "p1,y,b,1,-3"),
          "column 'cost'",
          "row 3",
      ),
      (
          "missing_cost",
          GOOD_LONG.replace("p0,x,b,0,1", "p0,x,b,0,"),
          "column 'cost'",
          "row 1",
      ),
      (
          "duplicate_pair",
          GOOD_LONG.replace("p1,y,b", "p1,y,a"),
          "column 'model'",
          "row 3",
      ),
      (
          "id_with_two_texts",
          GOOD_LONG.replace("p1,y,b", "p1,w,b"),
          "column 'prompt'",
          "row 3",
      ),
      (
          "llm_without_labels",
          GOOD_LONG.replace("b,0,", "b,,").replace("b,1,", "b,,"),
          "column 'b'",
          "no labels",
      ),
      (
          "no_costs",
          "prompt_id,prompt,model,quality\np0,x,a,1\n",
          "column 'cost'",
      ),
      ("empty_file", "", "empty"),
  )
  def test_long(self, text, *parts):
    self._assert_error(data.load_long, self._write("mine.csv", text), *parts)

  def test_long_jsonl_bad_label(self):
    path = self._write(
        "mine.jsonl",
        '{"prompt_id": "p0", "prompt": "x", "model": "a", "quality": 1, "cost":'
        ' 1}\n{"prompt_id": "p1", "prompt": "y", "model": "a", "quality": 7,'
        ' "cost": 1}\n',
    )
    self._assert_error(data.load_long, path, "column 'quality'", "row 1")

  def test_cost_table_missing_llm(self):
    path = self._write("mine.csv", "prompt,a,b\nx,1,0\n")
    self._assert_error(
        lambda p: data.load_wide_csv(p, cost_table={"a": 1.0}),
        path,
        "column 'b'",
        "cost table",
    )

  def test_duplicate_text_is_deduplicated_and_reported(self):
    path = self._write("mine.csv", GOOD_WIDE.replace("p1,y", "p1,x"))
    ds = data.load_wide_csv(path)
    self.assertEqual(ds.prompt_ids.tolist(), ["p0", "p2"])
    self.assertEqual(
        ds.provenance["dedup"]["dropped_duplicate_text_ids"], ["p1"]
    )

  def test_embedding_count_mismatch(self):
    ds = data.load_wide_csv(self._write("w.csv", GOOD_WIDE))
    path = self._write("emb.npy", "")
    np.save(path, np.zeros((2, 8), np.float32))
    self._assert_error(
        lambda p: data.load_embeddings_npy(p, ds), path, "2 embedding rows", "3"
    )

  def test_unknown_name_lists_bundled(self):
    with self.assertRaises(data.DataError) as cm:
      data.load("routerbench_full")
    msg = str(cm.exception)
    self.assertEqual(len(msg.splitlines()), 1)
    for name in data.BUNDLED:
      self.assertIn(name, msg)

  def test_sprout_unpriced_llm(self):
    path = self._write(
        "train.jsonl",
        '{"key": "k", "prompt": "x", "my-llm": {"score": 1, '
        '"num_input_tokens": 1, "num_output_tokens": 1}}\n',
    )
    self._assert_error(data.load_sprout, path, "column 'my-llm'", "price")

  def test_sprout_bad_record(self):
    path = self._write(
        "train.jsonl",
        '{"key": "k", "prompt": "x", "openai-gpt-4o": {"score": 1}}\n',
    )
    self._assert_error(
        data.load_sprout, path, "column 'openai-gpt-4o'", "row 0"
    )

  def test_embedllm_unknown_model(self):
    tmp = pathlib.Path(tempfile.mkdtemp())
    self.addCleanup(shutil.rmtree, tmp)
    (tmp / "question_order.csv").write_text("prompt_id,prompt\n0,x\n")
    (tmp / "model_order.csv").write_text("model_id,model_name\n0,a-7b\n")
    (tmp / "train.csv").write_text("model_id,prompt_id,prompt,label\n5,0,x,1\n")
    with self.assertRaises(data.DataError) as cm:
      data.load_embedllm(tmp)
    msg = str(cm.exception)
    for part in ("train.csv", "column 'model_id'", "row 0"):
      self.assertIn(part, msg)


if __name__ == "__main__":
  absltest.main()

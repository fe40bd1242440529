"""Upstream layouts: each loader's errors quote the 1-based line of the value.

Small folders in the upstream layouts are written to a temp dir; every
message is checked exactly and, where the file has lines, the line quoted
must hold the bad value (``token``).
"""

import json

import pandas as pd
from absl.testing import absltest

from tests.data import error_case
from unirouter_jax import data

GPT4O = "openai-gpt-4o"
COSTS = "; costs must be finite and >= 0"


def _sprout_line(key, record):
  return json.dumps({"key": key, "prompt": f"text {key}", GPT4O: record})


def _ok(score=1):
  return {"score": score, "num_input_tokens": 10, "num_output_tokens": 5}


class RouterBenchErrorsTest(error_case.ErrorCase):

  def test_csv_folder_second_file(self):
    d = self.make_dir()
    head = "sample_id,prompt,eval_name,a,a|total_cost\n"
    self.write("a_test.csv", head + "s0,\"['q0']\",arc,1,0.1\n", d)
    path = self.write(
        "b_train.csv",
        head + "s1,\"['q1',\n 'more']\",arc,1,0.1\ns2,\"['q2']\",arc,1.5,0.1\n",
        d,
    )
    self.assert_error(
        lambda: data.load_routerbench(d),
        f"file {path}, line 4 (prompt id 's2'), column 'a': label 1.5 outside "
        "[0, 1]",
        "1.5",
    )

  def test_pickle_quotes_the_1_based_row(self):
    path = self.make_dir() / "routerbench_0shot.pkl"
    pd.DataFrame({
        "sample_id": ["s0", "s1"],
        "prompt": ["['q0']", "['q1']"],
        "eval_name": ["arc", "arc"],
        "a": [1.0, 0.0],
        "a|total_cost": [0.1, -0.5],
    }).to_pickle(path)
    err = self.assert_error(
        lambda: data.load(path),
        f"file {path}, row 2 (prompt id 's1'), column 'a|total_cost': cost "
        "invalid (-0.5)"
        + COSTS,
    )
    self.assertEqual((err.row, err.line), (2, None))


class SproutErrorsTest(error_case.ErrorCase):

  def _file(self, *records, name="train-00000-of-00001.jsonl", folder=None):
    lines = [_sprout_line(f"k{i}", r) for i, r in enumerate(records)]
    # A blank line after the first record: counted, as an editor does.
    text = lines[0] + "\n\n" + "\n".join(lines[1:]) + "\n"
    return self.write(name, text, folder)

  def test_record_errors(self):
    cases = (
        (
            {"score": 1, "num_output_tokens": 5},
            (
                "record has no 'num_input_tokens'; expected score, "
                "num_input_tokens, num_output_tokens"
            ),
            '"k1"',
        ),
        (
            {"score": 1, "num_input_tokens": "many", "num_output_tokens": 5},
            (
                "record holds a non-number: could not convert string to float: "
                "'many'"
            ),
            "many",
        ),
        (_ok(score=1.5), "score 1.5 outside [0, 1]", "1.5"),
        (
            {"score": 1, "num_input_tokens": -4, "num_output_tokens": 0},
            "cost invalid (-1e-05)" + COSTS,
            "-4",
        ),
    )
    for record, message, token in cases:
      with self.subTest(message):
        path = self._file(_ok(), record)
        self.assert_error(
            lambda path=path: data.load_sprout(path),
            f"file {path}, line 3 (prompt id 'k1'), column '{GPT4O}': "
            + message,
            token,
        )

  def test_duplicate_key_across_splits(self):
    d = self.make_dir()
    self._file(_ok(), _ok(), folder=d)
    test = self.write(
        "test-00000-of-00001.jsonl", _sprout_line("k1", _ok()) + "\n", d
    )
    self.assert_error(
        lambda: data.load(d, format="sprout"),
        f"file {test}, line 1, column 'key': duplicate prompt id 'k1'",
        '"k1"',
    )

  def test_unpriced_llm(self):
    path = self.write(
        "train.jsonl", json.dumps({"key": "k", "prompt": "x", "m": _ok()})
    )
    self.assert_error(
        lambda: data.load_sprout(path),
        f"file {path}, column 'm': LLM not in the SPROUT price list (pass "
        "prices=)",
    )


class LLMRouterErrorsTest(error_case.ErrorCase):

  def _folder(self, train=None, query_test=None, llm=None):
    d = self.make_dir()
    train = train or [
        {"question": "q0", "scores": {"m1": 1.0, "m2": 0.0}},
        {"question": "q1", "scores": {"m1": 0.5, "m2": 1.0}},
    ]
    # Pretty-printed like upstream: one record spans several lines.
    self.write("train.json", json.dumps(train, indent=2), d)
    test = [{"question": "q2", "scores": {"m1": 0.0, "m2": 1.0}}]
    self.write("test.json", json.dumps(test, indent=2), d)
    self.write(
        "default_query_train.jsonl",
        '{"task_name": "t", "query": "q0"}\n{"task_name": "t", "query":'
        ' "q1"}\n',
        d,
    )
    self.write(
        "default_query_test.jsonl",
        query_test or '{"task_name": "u", "query": "q2"}\n',
        d,
    )
    llm = llm or {
        "m1": {"input_price": 0.1, "output_price": 0.2},
        "m2": {"input_price": 1.0, "output_price": 2.0},
    }
    self.write("default_llm.json", json.dumps(llm), d)
    return d

  def test_good_folder_loads(self):
    ds = data.load(self._folder())
    self.assertEqual((ds.num_prompts, ds.num_llms), (3, 2))

  def test_score_errors_quote_the_line_of_the_key(self):
    for bad, message, token in (
        (1.5, "score 1.5 outside [0, 1]", "1.5"),
        ("high", "score is not a number: 'high'", "high"),
    ):
      with self.subTest(message):
        train = [
            {"question": "q0", "scores": {"m1": 1.0, "m2": 0.0}},
            {"question": "q1", "scores": {"m1": 0.5, "m2": bad}},
        ]
        d = self._folder(train=train)
        self.assert_error(
            lambda d=d: data.load_llmrouter_dc(d),
            f"file {d / 'train.json'}, line 13, column 'm2': {message}",
            token,
        )

  def test_record_without_a_field(self):
    d = self._folder(train=[{"question": "q0", "scores": {"m1": 1}}, {}])
    self.assert_error(
        lambda: data.load_llmrouter_dc(d),
        f"file {d / 'train.json'}, line 8, column 'question': missing field",
        "{}",
    )

  def test_query_file_errors(self):
    for text, rest in (
        ('{"query": "q2"}\n', ", column 'task_name': missing field"),
        (
            "{oops\n",
            ": bad JSON: Expecting property name enclosed in double quotes",
        ),
    ):
      with self.subTest(rest):
        d = self._folder(
            query_test='{"task_name": "u", "query": "q9"}\n' + text
        )
        path = d / "default_query_test.jsonl"
        self.assert_error(
            lambda d=d: data.load_llmrouter_dc(d),
            f"file {path}, line 2{rest}",
            text.strip(),
        )

  def test_bad_price(self):
    llm = {
        "m1": {"input_price": -1, "output_price": 0.2},
        "m2": {"input_price": 1.0, "output_price": 2.0},
    }
    d = self._folder(llm=llm)
    self.assert_error(
        lambda: data.load_llmrouter_dc(d),
        f"file {d / 'default_llm.json'}, column 'm1': input_price -1 must be "
        "finite and >= 0",
    )


class AlpacaEvalErrorsTest(error_case.ErrorCase):

  def _folder(self, prompts=None, pref=None, lens=None):
    d = self.make_dir()
    self.write(
        "prompts.csv",
        prompts
        or 'prompt_idx,dataset,instruction\n0,h,say hi\n1,h,"two\nlines"\n',
        d,
    )
    self.write(
        "aev2_gpt4turbo_vs_gpt4_1106_preference.csv",
        pref or "prompt_idx,gpt4,vicuna-7b\n0,1.5,1\n1,2,1.25\n",
        d,
    )
    self.write(
        "output_length_chars.csv",
        lens or "prompt_idx,gpt4,vicuna-7b\n0,400,300\n1,800,100\n",
        d,
    )
    return d

  def test_good_folder_loads(self):
    ds = data.load_alpacaeval(self._folder())
    self.assertEqual((ds.num_prompts, ds.num_llms), (2, 2))

  def test_preference_outside(self):
    d = self._folder(pref="prompt_idx,gpt4,vicuna-7b\n0,1.5,1\n1,2,2.5\n")
    self.assert_error(
        lambda: data.load_alpacaeval(d),
        f"file {d / 'aev2_gpt4turbo_vs_gpt4_1106_preference.csv'}, line 3 "
        "(prompt id '1'), column 'vicuna-7b': preference 2.5 outside [1, 2]",
        "2.5",
    )

  def test_length_not_a_number(self):
    d = self._folder(lens="prompt_idx,gpt4,vicuna-7b\n0,400,long\n1,800,100\n")
    self.assert_error(
        lambda: data.load_alpacaeval(d),
        f"file {d / 'output_length_chars.csv'}, line 2 (prompt id '0'), "
        "column 'vicuna-7b': not a number: 'long'",
        "long",
    )

  def test_duplicate_prompt_idx(self):
    d = self._folder(
        prompts='prompt_idx,dataset,instruction\n0,h,"a\nb"\n0,h,c\n'
    )
    self.assert_error(
        lambda: data.load_alpacaeval(d),
        f"file {d / 'prompts.csv'}, line 4, column 'prompt_idx': duplicate "
        "prompt_idx 0",
        "0,h,c",
    )

  def test_unknown_prompt_idx(self):
    d = self._folder(pref="prompt_idx,gpt4,vicuna-7b\n0,1.5,1\n7,2,1\n")
    self.assert_error(
        lambda: data.load_alpacaeval(d),
        f"file {d / 'aev2_gpt4turbo_vs_gpt4_1106_preference.csv'}, line 3, "
        "column 'prompt_idx': prompt_idx 7 not in prompts.csv",
        "7,2,1",
    )


class EmbedLLMErrorsTest(error_case.ErrorCase):

  def _folder(self, questions=None, train=None):
    d = self.make_dir()
    self.write(
        "question_order.csv", questions or "prompt_id,prompt\n0,x\n1,y\n", d
    )
    self.write("model_order.csv", "model_id,model_name\n0,a-7b\n1,b-13b\n", d)
    self.write(
        "train.csv",
        train or "model_id,prompt_id,prompt,label\n0,0,x,1\n1,1,y,0\n",
        d,
    )
    return d

  def test_good_folder_loads(self):
    ds = data.load_embedllm(self._folder())
    self.assertEqual((ds.num_prompts, ds.num_llms), (2, 2))

  def test_train_file_errors(self):
    head = "model_id,prompt_id,prompt,label\n0,0,x,1\n"
    for row, message, token in (
        ("5,1,y,0", "column 'model_id': '5' not in model_order.csv", "5,1"),
        ("1,9,y,0", "column 'prompt_id': '9' not in question_order.csv", "1,9"),
        ("1,1,y,2", "column 'label': label 2 outside [0, 1]", "y,2"),
        ("1,1,y,yes", "column 'label': not a number: 'yes'", "yes"),
    ):
      with self.subTest(message):
        d = self._folder(train=head + row + "\n")
        pid = "" if "_id" in message else " (prompt id '1')"
        self.assert_error(
            lambda d=d: data.load_embedllm(d),
            f"file {d / 'train.csv'}, line 3{pid}, {message}",
            token,
        )

  def test_duplicate_question(self):
    d = self._folder(questions="prompt_id,prompt\n0,x\n1,y\n0,z\n")
    self.assert_error(
        lambda: data.load_embedllm(d),
        f"file {d / 'question_order.csv'}, line 4, column 'prompt_id': "
        "duplicate prompt id '0'",
        "0,z",
    )


if __name__ == "__main__":
  absltest.main()

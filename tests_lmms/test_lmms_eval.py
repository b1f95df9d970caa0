"""The adapter inside the real lmms-eval 0.7.3, beside `adsc eval` on the same questions.

* lmms-eval builds ``--model adsc`` from adsc's entry point, runs local POPE / VQAv2 tasks
  (its own task files, local parquet data) on a tiny model, full and compressed, from Python
  and from its CLI; the scores it reports are recomputed here from the predictions it logged.
* The same questions through ``adsc eval``: the same prompts and the same generated answers.
* Its scoring rules against LLaVA's (``adsc eval``'s) on the fixture's hand-made answers: the
  differences are pinned below and named in docs/evaluation.md.
"""

import glob
import json
import os
import statistics
import subprocess
import sys

import pytest
from lmms_tasks import POPE_TASKS, TASKS, VQAV2_TASK

from adsc.evaluation.normalize import process_digit_article, process_punctuation
from adsc.evaluation.predictions import read_predictions
from conftest import BATCH, SETTINGS, model_args

POPE_METRICS = ("pope_accuracy", "pope_precision", "pope_recall", "pope_f1_score", "pope_yes_ratio")


# ------------------------------------------------------------------ lmms-eval's rules, restated
def lmms_pope(preds: list[str], labels: list[str]) -> dict:
    """lmms-eval's tasks/pope/utils.py: a prediction counts only if it *is* "yes" / "no"."""
    preds = [p.lower().strip() for p in preds]
    tp = sum(p == "yes" and g == "yes" for p, g in zip(preds, labels))
    fp = sum(p == "yes" and g == "no" for p, g in zip(preds, labels))
    fn = sum(p == "no" and g == "yes" for p, g in zip(preds, labels))
    precision = tp / (tp + fp) if tp + fp else 0
    recall = tp / (tp + fn) if tp + fn else 0
    return {"pope_accuracy": sum(p == g for p, g in zip(preds, labels)) / len(preds), "pope_precision": precision,
            "pope_recall": recall, "pope_f1_score": 2 * precision * recall / (precision + recall) if precision + recall else 0,
            "pope_yes_ratio": labels.count("yes") / len(labels)}  # the *labels'* yes share, not the answers'


def _evalai(text: str) -> str:
    return process_digit_article(process_punctuation(text.replace("\n", " ").replace("\t", " ").strip()))


def lmms_vqav2(pred: str, answers: list[str]) -> float:
    """lmms-eval's vqav2_process_results: the ten answers get the prediction's full processing."""
    gts, res = [_evalai(a) for a in answers], _evalai(pred)
    return statistics.mean(min(1, sum(a == res for j, a in enumerate(gts) if j != i) / 3) for i in range(len(gts)))


def answer(sample: dict) -> str:
    """A logged sample's answer: a list in simple_evaluate's samples, a string in the CLI's files."""
    resp = sample["filtered_resps"]
    return resp if isinstance(resp, str) else resp[0]


def _check_scores(out: dict) -> None:
    """Every reported number equals the same rule applied to the logged answers."""
    for task in TASKS:
        samples, reported = out["samples"][task], out["results"][task]
        preds = [answer(s) for s in samples]
        if task == VQAV2_TASK:
            expected = {"exact_match": statistics.mean(lmms_vqav2(p, [a["answer"] for a in s["doc"]["answers"]])
                                                       for p, s in zip(preds, samples))}
        else:
            expected = lmms_pope(preds, [s["target"] for s in samples])
        for metric, value in expected.items():
            assert reported[f"{metric},none"] == pytest.approx(value), (task, metric)


# ------------------------------------------------------------------ lmms-eval runs our model
def test_entry_point_makes_adsc_a_model_name():
    from lmms_eval.api.model import lmms
    from lmms_eval.models import get_model

    from adsc.evaluation import lmms_eval_adapter

    cls = get_model("adsc")
    assert issubclass(cls, lmms) and cls is lmms_eval_adapter.adapter_class() and cls.is_simple


@pytest.mark.parametrize("setting", SETTINGS)
def test_simple_evaluate_scores_match_its_logged_predictions(lmms_runs, setting):
    out = lmms_runs[setting]
    assert sorted(out["results"]) == sorted(TASKS)
    assert [len(out["samples"][t]) for t in TASKS] == [4, 5, 3, 4]  # every fabricated question ran
    assert all(answer(s) for t in TASKS for s in out["samples"][t])  # the model said words
    _check_scores(out)


def test_compression_acts_inside_lmms_eval(lmms_runs):
    answers = {s: [answer(x) for t in TASKS for x in lmms_runs[s]["samples"][t]] for s in SETTINGS}
    assert sum(a != b for a, b in zip(answers["full"], answers["compressed"])) >= 4


def test_cli_runs_the_compressed_model(lmms_runs, model_dir, compression_file, task_dir, tmp_path):
    """`lmms-eval --model adsc ...` as a user types it: same answers and scores as simple_evaluate."""
    cli = os.path.join(os.path.dirname(sys.executable), "lmms-eval")  # the venv's console script
    cmd = [cli, "--model", "adsc", "--model_args", model_args(model_dir, compression_file, "compressed"),
           "--tasks", ",".join(TASKS), "--include_path", task_dir, "--batch_size", str(BATCH),
           "--output_path", str(tmp_path), "--log_samples", "--verbosity", "WARNING"]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (results_file,) = glob.glob(str(tmp_path / "*" / "*_results.json"))
    with open(results_file) as fh:
        results = json.load(fh)["results"]
    ref = lmms_runs["compressed"]
    for task in TASKS:
        (samples_file,) = glob.glob(str(tmp_path / "*" / f"*_samples_{task}.jsonl"))
        with open(samples_file) as fh:
            logged = [json.loads(line) for line in fh]
        assert [answer(s) for s in logged] == [answer(s) for s in ref["samples"][task]]
        assert {k: v for k, v in results[task].items() if "stderr" not in k} == \
               {k: v for k, v in ref["results"][task].items() if "stderr" not in k}


def test_compiled_decoding_through_model_args_gives_the_same_answers(lmms_runs, model_dir, compression_file,
                                                                     task_manager):
    """`--model_args ...,compile=true` (torch.compile, inductor on the CPU): lmms-eval's POPE answers
    equal the eager compressed run's."""
    import torch
    from lmms_eval.evaluator import simple_evaluate

    task = POPE_TASKS["adversarial"][0]
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    out = simple_evaluate(model="adsc", model_args=model_args(model_dir, compression_file, "compressed") + ",compile=true",
                          tasks=[task], task_manager=task_manager, batch_size=BATCH, log_samples=True, verbosity="WARNING")
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    torch._dynamo.reset()
    assert graphs >= 1  # it did compile
    assert [answer(s) for s in out["samples"][task]] == [answer(s) for s in lmms_runs["compressed"]["samples"][task]]


# ------------------------------------------------------------------ the same questions in `adsc eval`
def _adsc_predictions(adsc_runs, setting: str, bench: str) -> dict:
    return read_predictions(os.path.join(adsc_runs[setting][bench], f"{bench}.predictions.jsonl"))[1]


def _lmms_by_adsc_id(out: dict) -> dict:
    """lmms-eval's logged samples under `adsc eval`'s ids (POPE: split/question_id)."""
    by_id = {}
    for split, (task, _) in POPE_TASKS.items():
        by_id.update({f"{split}/{s['doc']['question_id']}": s for s in out["samples"][task]})
    by_id.update({str(s["doc"]["question_id"]): s for s in out["samples"][VQAV2_TASK]})
    return by_id


@pytest.mark.parametrize("setting", SETTINGS)
def test_same_prompts_same_answers_as_adsc_eval(lmms_runs, adsc_runs, model_dir, data_root, setting):
    from adsc.evaluation.benchmarks import load_benchmark
    from adsc.evaluation.generation import Generator, load_model

    model, processor = load_model(model_dir, "float32", "cpu")
    generator = Generator(model, processor)
    lmms = _lmms_by_adsc_id(lmms_runs[setting])
    for bench in ("pope", "vqav2"):
        ours = _adsc_predictions(adsc_runs, setting, bench)
        texts = {s.id: s.text for s in load_benchmark(bench, data_root).samples}
        assert ours and set(ours) <= set(lmms)
        for qid, rec in ours.items():
            context = lmms[qid]["arguments"][0]
            assert context == texts[qid]  # lmms-eval's doc_to_text = the LLaVA question + suffix
            assert generator.prompt(context, True) == rec["prompt"]  # one chat template
            assert answer(lmms[qid]) == rec["text"], (setting, qid)



# ------------------------------------------------------------------ scoring: lmms-eval vs LLaVA's rules
class Replay:
    """An lmms model answering with the fixture's hand-made predictions (the ones adsc's own
    scoring tests use), so lmms-eval's whole pipeline scores known strings."""

    @staticmethod
    def build():
        from eval_fixtures import POPE_PRED, VQAV2_PRED
        from lmms_eval.api.model import lmms

        class ReplayLM(lmms):
            def generate_until(self, requests):
                out = []
                for req in requests:
                    _, _, _, doc_id, task, split = req.args
                    qid = self.task_dict[task][split][doc_id]["question_id"]
                    out.append(VQAV2_PRED[str(qid)] if task == VQAV2_TASK else POPE_PRED[f"{split}/{qid}"])
                return out

            def loglikelihood(self, requests):
                raise NotImplementedError

            def generate_until_multi_round(self, requests):
                raise NotImplementedError

        return ReplayLM()


def test_scoring_rules_differ_from_llava(task_manager, data_root):
    """The same answers, two rule books. adsc eval (LLaVA's eval_pope.py / the VQA server) gives
    POPE F1 50 / 66.7 / 100 and VQAv2 65.0 (tests/evaluation); lmms-eval gives these."""
    from eval_fixtures import POPE_EXPECTED, POPE_PRED, VQAV2_EXPECTED, VQAV2_PRED
    from lmms_eval.evaluator import simple_evaluate

    from adsc.evaluation.benchmarks import load_benchmark

    out = simple_evaluate(model=Replay.build(), tasks=TASKS, task_manager=task_manager, log_samples=True, verbosity="WARNING")
    res = {t: {m.split(",")[0]: v for m, v in r.items() if m.endswith(",none") and "_stderr" not in m}
           for t, r in out["results"].items()}
    ours_pope = load_benchmark("pope", data_root).score(POPE_PRED)
    ours_vqa = load_benchmark("vqav2", data_root).score(VQAV2_PRED)
    assert ours_pope["adversarial"]["f1"] == pytest.approx(POPE_EXPECTED["adversarial"])
    assert ours_vqa["accuracy"] == pytest.approx(VQAV2_EXPECTED)

    # POPE. LLaVA: first sentence, "no" if a word is No/not/no, else "yes". lmms-eval: the
    # whole answer lower-cased must *be* "yes" or "no"; anything else is wrong for accuracy and
    # is neither a positive nor a negative for precision / recall.
    # adversarial: "Yes, there is a dog." (LLaVA TP) and "No." (FN) count for nothing; "No,
    # there is not." is no TN; only "Yes" (FP) counts: accuracy 0, precision 0/1, F1 0 (LLaVA 50).
    assert res["adsc_pope_adv"] == pytest.approx({"pope_accuracy": 0.0, "pope_precision": 0.0, "pope_recall": 0.0,
                                                  "pope_f1_score": 0.0, "pope_yes_ratio": 0.5})
    # popular: "There is not a cat..." (LLaVA FN) and "Yes. No doubt." (LLaVA TP) drop out; "NO"
    # is "no" here (LLaVA: yes, an FP): precision 1/1, recall 1/1, F1 1.0 (LLaVA 66.7),
    # accuracy 3/5 both ways. yes_ratio is the labels' share of "yes" (3/5), LLaVA's the answers'.
    assert res["adsc_pope_pop"] == pytest.approx({"pope_accuracy": 0.6, "pope_precision": 1.0, "pope_recall": 1.0,
                                                  "pope_f1_score": 1.0, "pope_yes_ratio": 0.6})
    assert ours_pope["popular"]["yes_ratio"] == pytest.approx(60.0) and ours_pope["adversarial"]["yes_ratio"] == 50.0
    # random: plain yes / no answers score alike under both (as fractions, not percent).
    assert res["adsc_pope_random"] == pytest.approx({"pope_accuracy": 1.0, "pope_precision": 1.0, "pope_recall": 1.0,
                                                     "pope_f1_score": 1.0, "pope_yes_ratio": 2 / 3})
    assert ours_pope["random"]["f1"] == pytest.approx(100.0)

    # VQAv2. The VQA server processes only the punctuation of the ten human answers; lmms-eval
    # gives them the prediction's full processing, articles and number words included. Question
    # 3 ("the dog" against 4 x "the dog", 2 x "dog", 4 x "puppy"): server 0.6, lmms-eval 1.0.
    # Mean: lmms-eval (1 + 0 + 1 + 1) / 4 = 0.75, the server 65.0 %.
    assert res[VQAV2_TASK]["exact_match"] == pytest.approx(0.75)
    per_question = {str(s["doc"]["question_id"]): s["exact_match"] for s in out["samples"][VQAV2_TASK]}
    assert per_question == pytest.approx({"1": 1.0, "2": 0.0, "3": 1.0, "4": 1.0})
    _check_scores(out)

"""Property tests (issue 19): malformed records and files fed to every benchmark reader, random
argument values fed to the eval CLI's checks. Either our named error or a valid result -- never
a raw TypeError/KeyError/AttributeError/IndexError -- and a failed run changes no output file."""

import json
import os
import shutil
import tempfile
from unittest import mock

import pytest
from eval_fixtures import MME_SUBTASKS, OPTIONS, snapshot, write_all, write_llava_mme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adsc.config import ConfigError
from adsc.evaluation.benchmarks import BENCHMARKS, EvaluationInputError

NAMED = (EvaluationInputError, ConfigError)  # the package's own error types (DataError is an EvaluationInputError)
QUICK = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**6) | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
FILES = {  # benchmark -> its question / annotation files
    "gqa": ["gqa/testdev_balanced_questions.json"],
    "mme": ["mme/llava_mme.jsonl", "mme/MME_Benchmark_release_version/existence/0001.txt"],
    "pope": ["pope/coco/coco_pope_random.json", "pope/coco/coco_pope_adversarial.json"],
    "sqa": ["scienceqa/problems.json", "scienceqa/pid_splits.json"],
    "textvqa": ["textvqa/TextVQA_0.5.1_val.json", "textvqa/llava_textvqa_val_v051_ocr.jsonl",
                "textvqa/TextVQA_Rosetta_OCR_v0.2_val.json"],
    "vqav2": ["vqav2/v2_OpenEnded_mscoco_val2014_questions.json", "vqav2/v2_mscoco_val2014_annotations.json"],
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("pristine"))
    write_all(root)
    write_llava_mme(root)
    return root


def _objects(value, found=None):
    """Every JSON object inside ``value`` (depth first), to pick one to break."""
    found = [] if found is None else found
    if isinstance(value, dict):
        found.append(value)
        for v in value.values():
            _objects(v, found)
    elif isinstance(value, list):
        for v in value:
            _objects(v, found)
    return found


def _break(data, path: str, draw) -> None:
    """Rewrite ``path`` broken one of several ways chosen by hypothesis."""
    with open(path, "rb") as fh:
        raw = fh.read()
    how = draw(st.sampled_from(["bytes", "json", "record", "truncate"]))
    if how == "bytes":
        new = draw(st.binary(max_size=40))
    elif how == "truncate":
        new = raw[: draw(st.integers(0, max(0, len(raw) - 1)))]
    elif how == "json":
        new = json.dumps(draw(JSON)).encode()
    else:  # one field of one record gets another value, or goes
        if path.endswith(".txt"):
            lines = raw.decode().splitlines()
            i = draw(st.integers(0, len(lines) - 1))
            lines[i] = draw(st.text(max_size=20))
            new = "\n".join(lines).encode()
        else:
            jsonl = path.endswith(".jsonl") or b"\n{" in raw
            docs = [json.loads(x) for x in raw.decode().splitlines() if x.strip()] if jsonl else [json.loads(raw)]
            objects = _objects(docs)
            target = objects[draw(st.integers(0, len(objects) - 1))]
            if target:
                key = draw(st.sampled_from(sorted(target)))
                if draw(st.booleans()):
                    del target[key]
                else:
                    target[key] = draw(JSON)
            new = ("\n".join(json.dumps(d) for d in docs) + "\n" if jsonl else json.dumps(docs[0])).encode()
    with open(path, "wb") as fh:
        fh.write(new)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """An output directory holding a results.json and prediction files, for 'nothing changed' checks."""
    out = str(tmp_path_factory.mktemp("finished"))
    with open(os.path.join(out, "results.json"), "w") as fh:
        json.dump({"model": "m", "benchmarks": {}, "fingerprint": {}}, fh)
    with open(os.path.join(out, "pope.predictions.jsonl"), "w") as fh:
        fh.write(json.dumps({"header": {"fingerprint": {}, "shard": None}}) + "\n")
    return out


@pytest.mark.parametrize("name", sorted(FILES))
@QUICK
@given(data=st.data())
def test_readers_give_a_named_error_or_a_valid_benchmark(pristine, finished_run, name, data):
    with tempfile.TemporaryDirectory() as root:
        shutil.copytree(pristine, root, dirs_exist_ok=True)
        target = os.path.join(root, data.draw(st.sampled_from(FILES[name])))
        _break(None, target, data.draw)
        try:
            # the reader itself, not load_benchmark: its safety net would hide a check a reader lacks
            bench = BENCHMARKS[name](root, **OPTIONS.get(name, {}))
            bench.check_images()
        except NAMED as err:
            assert str(err)  # a message, naming things
            before = snapshot(finished_run)
            from adsc.evaluation.run import evaluate

            with pytest.raises(NAMED):  # the same input through a run: refused before anything is written
                evaluate(None, None, [name], root, finished_run, benchmark_options=OPTIONS, progress=False)
            assert snapshot(finished_run) == before
            return
        ids = [s.id for s in bench.samples]
        assert ids and len(set(ids)) == len(ids) and all(isinstance(i, str) for i in ids)
        for s in bench.samples:
            assert isinstance(s.text, str) and (s.image is None or s.image.startswith(root))
        answers = data.draw(st.lists(st.text(max_size=12), min_size=len(ids), max_size=len(ids)))
        try:
            scores = bench.score(dict(zip(ids, answers)))
        except NAMED:
            return  # e.g. no balanced question left among the samples
        assert isinstance(scores, dict)


ARG_VALUES = st.one_of(st.integers(-3, 3).map(str), st.sampled_from(["", "x", "1.5", "1e3", "-0", "2/1", "0/1", "cuda",
                                                                     "cpu", "cuda:x", "fp8", "bf16", "nan"]))
ARGS = ["--batch-size", "--limit", "--max-new-tokens", "--shard", "--dtype", "--device", "--budget", "--drop-ratio",
        "--vision-tokens", "--layers", "--method", "--benchmarks", "--mme-subtasks", "--attn"]


class _Reached(Exception):
    """Every check passed and the model would be loaded now."""


@QUICK
@given(pairs=st.lists(st.tuples(st.sampled_from(ARGS), ARG_VALUES), min_size=1, max_size=4))
def test_cli_checks_name_every_bad_argument(tiny_model_dir, data_root, finished_run, pairs):
    from adsc.cli import main

    argv = ["eval", "--model", tiny_model_dir, "--data-root", data_root, "--output-dir", finished_run, "--quiet",
            "--benchmarks", "pope", "--mme-subtasks", ",".join(MME_SUBTASKS)]
    for flag, value in pairs:
        argv += [f"{flag}={value}"]
    before = snapshot(finished_run)

    def stop(*args, **kwargs):
        raise _Reached

    with mock.patch("adsc.evaluation.generation.load_model", stop), mock.patch("sys.stderr"):
        try:
            rc = main(argv)
        except SystemExit as exit_:  # argparse's own refusal: usage and the message, status 2
            assert exit_.code == 2
        except _Reached:
            pass
        else:
            assert rc == 2  # a named error, printed on one line
    assert snapshot(finished_run) == before

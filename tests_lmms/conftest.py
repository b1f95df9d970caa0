"""Fixtures for the tests that drive the real lmms-eval (run in .venv-lmms: `make test-lmms`).

One tiny LLaVA saved like a hub checkpoint, the fabricated POPE and VQAv2 files of
tests/evaluation/eval_fixtures.py, the same questions as lmms-eval tasks, and one run of each
path (lmms-eval's simple_evaluate through ``--model adsc``, and ``adsc eval``'s evaluate) per
setting, full and compressed, shared by the tests.
"""

import atexit
import os
import shutil
import sys
import tempfile

import pytest

# Offline before lmms-eval / datasets are imported: every file is local, nothing may reach a hub.
# Their caches (datasets' parquet conversions, lock files) go to a folder of this run, not ~/.cache.
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
_CACHE = tempfile.mkdtemp(prefix="adsc-lmms-hf-")
atexit.register(shutil.rmtree, _CACHE, True)
os.environ["HF_HOME"] = _CACHE
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path[:0] = [os.path.dirname(__file__), os.path.join(os.path.dirname(__file__), "..", "tests", "evaluation")]

try:  # fail, never skip: a skipped run would pass CI with lmms-eval broken
    import lmms_eval  # noqa: F401
except ImportError as err:
    raise pytest.UsageError(f"tests_lmms need lmms-eval ({err}): run `make test-lmms` (builds .venv-lmms)") from None

COMPRESSION = {"layers": [2, 4], "drop_ratio": 0.5, "vision_tokens": 36}  # 36 = (48 / 8)^2 tokens per image
SETTINGS = ("full", "compressed")
BATCH = 4
VQAV2_NEW_TOKENS = 16  # lmms-eval's vqav2 cap; LLaVA's (and adsc eval's default) is 128


def speaking_tiny_llava(seed: int = 3):
    """A tiny random LLaVA whose output head can only pick words of its tokenizer (or end).

    A bare random head mostly picks ids the word-level tokenizer has no word for, which decode
    to "": the answers would all be empty and equal. With the other rows zeroed the greedy
    answers are words, and they change when the compression drops vision tokens.
    """
    import torch

    from adsc.tiny import tiny_llava, tiny_llava_processor

    model, processor = tiny_llava(layers=6, image_size=48, patch=8, seed=seed), tiny_llava_processor(48, 8)
    tokenizer = processor.tokenizer
    words = [i for t, i in tokenizer.get_vocab().items() if t.isalpha() and t not in ("USER", "ASSISTANT")]
    keep = torch.zeros(model.lm_head.weight.shape[0], dtype=torch.bool)
    keep[words + [tokenizer.eos_token_id]] = True
    with torch.no_grad():
        model.lm_head.weight[~keep] = 0
    return model, processor


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    path = str(tmp_path_factory.mktemp("tiny_llava"))
    model, processor = speaking_tiny_llava()
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def compression_file(tmp_path_factory):
    import adsc

    return adsc.CompressionConfig.from_dict(COMPRESSION).save_pretrained(str(tmp_path_factory.mktemp("compression")))


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    from eval_fixtures import write_pope, write_vqav2

    root = str(tmp_path_factory.mktemp("evaldata"))
    write_pope(root)
    write_vqav2(root)
    return root


@pytest.fixture(scope="session")
def task_dir(data_root, tmp_path_factory):
    from lmms_tasks import write_tasks

    path = str(tmp_path_factory.mktemp("lmms_tasks"))
    write_tasks(data_root, path)
    return path


@pytest.fixture(scope="session")
def task_manager(task_dir):
    from lmms_eval.tasks import TaskManager

    # Only our folder: indexing lmms-eval's hundreds of built-in tasks takes seconds, and ours
    # include their YAML by path.
    return TaskManager("WARNING", include_path=task_dir, include_defaults=False)


def model_args(model_dir: str, compression_file: str, setting: str) -> str:
    args = f"pretrained={model_dir},device=cpu,dtype=float32"
    return args + (f",compression={compression_file}" if setting == "compressed" else "")


@pytest.fixture(scope="session")
def lmms_runs(model_dir, compression_file, task_manager):
    """lmms-eval's simple_evaluate, --model adsc by name (the entry point), per setting."""
    from lmms_eval.evaluator import simple_evaluate
    from lmms_tasks import TASKS

    return {s: simple_evaluate(model="adsc", model_args=model_args(model_dir, compression_file, s), tasks=TASKS,
                               task_manager=task_manager, batch_size=BATCH, log_samples=True, verbosity="WARNING")
            for s in SETTINGS}


@pytest.fixture(scope="session")
def adsc_runs(model_dir, data_root, tmp_path_factory):
    """`adsc eval`'s evaluate on the same files, per setting: {setting: {benchmark: results}}."""
    import adsc
    from adsc.evaluation import evaluate
    from adsc.evaluation.generation import load_model

    model, processor = load_model(model_dir, "float32", "cpu")
    out = {}
    for s in SETTINGS:
        comp = adsc.CompressionConfig.from_dict(COMPRESSION) if s == "compressed" else None
        runs = {}
        for bench, new_tokens in (("pope", None), ("vqav2", VQAV2_NEW_TOKENS)):
            runs[bench] = str(tmp_path_factory.mktemp(f"adsc_{s}_{bench}"))
            evaluate(model, processor, [bench], data_root, runs[bench], compression=comp, batch_size=BATCH,
                     max_new_tokens=new_tokens, progress=False)
        out[s] = runs
    return out

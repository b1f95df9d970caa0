import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    from eval_fixtures import write_all

    return write_all(str(tmp_path_factory.mktemp("evaldata")))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random LLaVA + processor saved like a hub checkpoint, to load through the real path."""
    import torch

    from adsc.tiny import tiny_llava, tiny_llava_processor

    torch.set_num_threads(1)
    path = str(tmp_path_factory.mktemp("tiny_llava"))
    tiny_llava(layers=6, image_size=48, patch=8, seed=3).save_pretrained(path)
    tiny_llava_processor(image_size=48, patch=8).save_pretrained(path)
    return path

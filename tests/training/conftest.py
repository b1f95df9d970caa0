import os
import sys

sys.path.insert(0, os.path.dirname(__file__))  # the shared fixtures module

import pytest
from fixtures import make_dataset, save_tiny_model


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """(root, tiny model folder, data file, image folder): a few records to check runs against."""
    root = tmp_path_factory.mktemp("inputs")
    model = save_tiny_model(str(root / "model"))
    data, images = make_dataset(str(root), n=4)
    return root, model, data, images

import os

import torch

torch.set_num_threads(int(os.environ.get("ADSC_TEST_THREADS", "2")))


def pytest_configure(config):
    # tests/core/test_compile.py, adsc bench --compile: torch.compile on the CPU (minutes in all);
    # deselect with -m "not compile"
    config.addinivalue_line("markers", "compile: runs torch.compile (inductor on the CPU takes ~45 s a model)")

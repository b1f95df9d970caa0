import os

import torch

torch.set_num_threads(int(os.environ.get("ADSC_TEST_THREADS", "2")))

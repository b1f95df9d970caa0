"""Evaluation under the LLaVA-1.5 protocol: GQA, MME, POPE, ScienceQA-IMG, TextVQA, VQAv2.

* ``benchmarks``: readers of the official files + scorers identical to the official scripts;
  ``HEADLINES`` defines each benchmark's Table I number.
* ``normalize``: the EvalAI answer normalisation and VQA accuracy.
* ``run.evaluate``: batched greedy generation into resumable, shardable prediction files,
  scores, ``results.json``.
* ``report``: Table I (markdown) and Figure 2 (PNG) from several ``results.json``.
* ``lmms_eval_adapter``: a compressed model as an lmms-eval model (lmms-eval optional).
"""

from __future__ import annotations

from .benchmarks import BENCHMARKS, HEADLINES, DataError, headline, load_benchmark
from .run import evaluate

__all__ = ["BENCHMARKS", "HEADLINES", "DataError", "headline", "load_benchmark", "evaluate"]

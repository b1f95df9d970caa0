# Two commands a newcomer needs: `make demo` (the main job) and `make test` (the suite).
# Both install what they need first. torch is pinned to the CPU build that lies on the
# development machines' disk, installed before anything that could pull a CUDA build.
PY ?= python3
STAMP := .setup.stamp

.PHONY: setup demo test

$(STAMP): pyproject.toml
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) -m adsc demo

test: $(STAMP)
	$(PY) -m pytest tests

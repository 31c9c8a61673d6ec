# Entry points for a fresh machine: `make repro` (whole pipeline), `make test` (the whole suite, as CI runs it) and
# `make check` (the fast unit tests only). Each creates .venv from the pinned requirements.lock on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: repro test check install
install: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==24.3.1
	$(PY) -m pip install --quiet -r requirements.lock
	# MTCNN face detector (weights inside the wheel). --no-deps: its metadata pins torch<2.3 and numpy<2, but its
	# real imports (torch, torchvision, numpy, Pillow, requests, tqdm) are already pinned in the lock file above
	$(PY) -m pip install --quiet --no-deps facenet-pytorch==2.6.0
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

repro: install
	dvc repro
	dvc metrics show  # one row per condition: seed mean, seed std, Δ vs finetune_korean with its CI

test: install
	$(PY) -m pytest

check: install  # the unit tests without the end-to-end dvc runs (those are marked slow)
	$(PY) -m pytest -m "not slow"

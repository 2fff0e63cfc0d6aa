# GenSeg-R1 research repo. `make reproduce` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
# the first of python3.11, 3.12, 3.13 on the PATH (the versions pyproject.toml declares)
PYTHON ?= $(firstword $(foreach v,3.11 3.12 3.13,$(shell command -v python$(v) 2>/dev/null)))
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= smoke
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup test test-browser chromium reproduce warmstart sweep lab demo bench lint clean

setup: $(STAMP)

# Rebuilt only when pyproject.toml changes. torch/torchvision come first (pinned in
# pyproject.toml); sam2 is an sdist compiled against that torch, so it is built without
# isolation and with SAM2_BUILD_CUDA=0 (its CUDA op is optional post-processing).
$(STAMP): pyproject.toml scripts/bootstrap_pins.py
	@test -n "$(PYTHON)" && command -v $(PYTHON) >/dev/null || { echo "need python3.11, 3.12 or 3.13 (or set PYTHON=...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $$($(BIN)/python scripts/bootstrap_pins.py torch torchvision) setuptools wheel
	SAM2_BUILD_CUDA=0 $(BIN)/pip install -q --no-build-isolation $$($(BIN)/python scripts/bootstrap_pins.py sam2)
	$(BIN)/pip install -q -e '.[test]'
	@touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q

# The demo in headless Chromium (Voilà app and JupyterLab); screenshots in reports/browser/.
test-browser: setup chromium
	GENSEG_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q tests/test_browser.py

# Debian's chromium for the browser test, installed where it is missing (needs root or sudo).
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The smoke profile starts from the shipped SynthRef prompter (checkpoints/synthref-prompter);
# `make reproduce RETRAIN=1` re-creates it first (`make warmstart`). PARAMS="key=value ..." sets
# notebook parameters, e.g. PARAMS=ceiling_steps=4800 adds notebook 02's long reference B
# (finished runs are reused, so after a plain run only that one trains).
PARAMS ?=
reproduce: setup $(if $(RETRAIN),warmstart)
	PROFILE=$(PROFILE) $(BIN)/python -m genseg_lib.reproduce --profile $(PROFILE) \
		$(foreach p,$(PARAMS),-p $(p))

# The shipped stage-0 recipe (CPU: one thread trains while one worker builds batches; about
# 80 min of vision pretraining, then 57 min with the pretrained tower frozen). DEVICE=auto
# WORKERS=N trains on a GPU when there is one: the shipped checkpoint's vision pretraining and its
# first 3,233 warm-start steps ran on one H200 with WORKERS=14 (7.4 + 4 min), the rest of the
# warm start on 2 CPU cores (`warmstart.json` lists the three invocations).
DEVICE ?= cpu
WORKERS ?= 1
warmstart: setup
	rm -rf checkpoints/synthref-prompter-last checkpoints/synthref-prompter-vision.pt
	OMP_NUM_THREADS=1 $(BIN)/python -m genseg_lib.stage0 --out checkpoints/synthref-prompter \
		--vision-steps 9250 --vision-batch-size 64 --vision-lr-scale 0 \
		--steps 8000 --single-object-steps 1000 --pair-steps 3000 \
		--device $(DEVICE) --workers $(WORKERS)

# e.g. make sweep NB=02 GRID="learning_rate=1e-5,1e-4 max_steps=30,60"
sweep: setup
	@test -n "$(NB)" -a -n "$(GRID)" || { echo 'usage: make sweep NB=02 GRID="key=v1,v2 ..."'; exit 1; }
	$(BIN)/python -m genseg_lib.reproduce --profile $(PROFILE) --only $(NB) --sweep $(GRID)

# jupyter refuses to run as root unless told (containers often are root)
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: setup
	$(BIN)/jupyter lab notebooks/ $(ROOT_FLAG)

# notebook 05 as a web app (widgets only, no code) on http://localhost:$(PORT)
PORT ?= 8866
demo: setup
	$(BIN)/voila notebooks/05_demo.ipynb --port=$(PORT) --no-browser

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

# Two entry points (see README): `make run` and `make test`. Both set up a fresh Debian machine
# (a .venv with the pinned packages, the Debian Fashion-MNIST package, a local DVC remote) and
# are fast no-ops for the set-up part once it is done.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
REMOTE ?= $(HOME)/.cache/kexue/dvc-remote

# stage commands in dvc.yaml call `python`: make it the venv's
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup system-deps run quick test lint bench readme clean-venv

setup: $(STAMP) system-deps .dvc/config.local

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "make: no python3.11 found; install it: apt-get install python3.11 python3.11-venv" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { echo "make: $(PYTHON) is not Python 3.11; run 'make PYTHON=/path/to/python3.11 ...'" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# From Debian, installed when we may: Fashion-MNIST (dataset-fashion-mnist), and a font with
# Chinese glyphs for the saliency@sentiment PNG (fonts-wqy-microhei, unless fontconfig has one).
system-deps:
	@missing=""; \
	[ -f $(FMNIST) ] || missing=" dataset-fashion-mnist"; \
	fc-list :lang=zh 2>/dev/null | grep -q . || missing="$$missing fonts-wqy-microhei"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "make: installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
	  echo "make: installing Debian packages:$$missing (sudo)"; \
	  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else \
	  echo "make: missing Debian packages:$$missing; this user cannot install packages." >&2; \
	  echo "      Ask an administrator to run: apt-get install$$missing" >&2; exit 1; \
	fi

# a local DVC remote for `dvc push` / `dvc pull` (config.local is not committed)
.dvc/config.local: | $(STAMP)
	$(BIN)/dvc remote add --local --force --default local $(REMOTE)

# each stage's wall time goes to reports/timings.json (kexue.timings)
run: setup
	$(BIN)/python -m kexue.timings --out reports/timings.json -- $(BIN)/dvc repro
	$(BIN)/python -m kexue.stages.report --metrics metrics --out reports/results.md --readme README.md \
	  --timings reports/timings.json

# the whole DAG on the tiny profile in a scratch copy: every stage seen working
quick: setup
	$(BIN)/python -m kexue.tiny $(DEST)

test: setup
	$(BIN)/python -m pytest -n 2 --dist loadscope --no-loadscope-reorder --durations=15

lint: setup
	$(BIN)/ruff check src tests bench

bench: setup
	$(BIN)/python -m bench.sentiment_determinism

readme: setup
	$(BIN)/python -m kexue.stages.report --metrics metrics --out reports/results.md --readme README.md \
	  --timings reports/timings.json

clean-venv:
	rm -rf $(VENV)

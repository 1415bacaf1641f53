# One obvious way to run each thing: make run | test | lint | bench.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint bench install controlplane clean lock

# The stamp records the interpreter the venv was made with. A venv belongs to its interpreter (its
# python is a link to it, its packages are under lib/pythonX.Y): when $(PYTHON) is another one (an
# upgrade, PYTHON=python3.12), the venv is made again from nothing rather than patched.
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print(" ".join(sys.version.split()))')
ifneq ($(PYTHON_VERSION),$(file < $(STAMP)))
.PHONY: $(STAMP)
VENV_CLEAR := --clear
endif

# The run-time dependencies at the versions of requirements.lock, the ones the image installs: the
# tests run against what ships.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV_CLEAR) $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --constraint requirements.lock -e '.[test]'
	echo '$(PYTHON_VERSION)' > $@

install: $(STAMP)

# Upgrade the run-time dependencies to the newest pyproject.toml allows and pin them in
# requirements.lock (hack/lock.py); then `make test`.
lock: install
	$(BIN)/pip install --quiet --upgrade --upgrade-strategy eager -e '.[test]'
	$(BIN)/python hack/lock.py > requirements.lock.new && mv requirements.lock.new requirements.lock

# kube-apiserver, kube-scheduler, etcd and kubectl built from Go modules into ~/.cache/multus-webhook (reused).
controlplane:
	bash hack/controlplane/build.sh >/dev/null

# A local control plane with the webhook registered; Ctrl-C stops everything.
run: install controlplane
	$(BIN)/python -m webhook.dev

test: install controlplane lint-python
	$(BIN)/pytest

# Not a test: prints a table and writes bench/results.json (tracked from run to run). ~5 minutes.
bench: install controlplane
	$(BIN)/python -m bench.run

lint-python: install
	$(BIN)/ruff check webhook tests
	$(BIN)/mypy --strict webhook

lint: lint-python
	$(BIN)/hadolint Dockerfile

clean:
	rm -rf $(VENV) .local .pytest_cache .mypy_cache .ruff_cache

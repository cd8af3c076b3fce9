# Fairwire: `make run` starts a node with the embedded defaults, `make test` runs every test.
# Set-up is idempotent: a stamp file remembers what was installed and from which inputs.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.fairwire-installed
WEB := signalling/web
WEB_STAMP := $(WEB)/node_modules/.fairwire-installed
# The C batch sender (sfu/batch_send.py), built into the source tree against the limited API.
NATIVE := sfu/_native.abi3.so

.PHONY: run test setup web system-deps lint typecheck bench clean

setup: $(STAMP) $(WEB_STAMP) $(NATIVE)

$(STAMP): pyproject.toml
	@scripts/check-python.sh $(PYTHON)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

# Order-only on the install: reinstalling (cffi) does not change what the C file compiles to.
$(NATIVE): sfu/native/batch_send.c sfu/_native_build.py | $(STAMP)
	@scripts/ensure-build-tools.sh $(BIN)/python
	@$(BIN)/python -m sfu._native_build

$(WEB_STAMP): $(WEB)/package.json $(WEB)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: apt-get install npm"; exit 1; }
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

system-deps:
	@scripts/ensure-system-deps.sh

run: setup
	$(BIN)/fairwire serve

test: setup system-deps
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint:
	$(BIN)/ruff check .

typecheck:
	$(BIN)/mypy

bench: setup
	$(BIN)/python tests/perf/bench_fanout.py

clean:
	rm -rf $(VENV) $(WEB)/node_modules $(NATIVE)

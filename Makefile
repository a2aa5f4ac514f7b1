# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
KEYS := .provenance/keys
DEMO_OUT := demo-out

.PHONY: install demo test lint typecheck unit docs bench bench-smoke clean

$(BIN)/provenance: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/provenance

# axe-core (pinned in package-lock.json) for the accessibility tests; only `make test`
# needs npm, `make demo` does not.
node_modules/axe-core/axe.min.js: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## demo: development keys, sign every sample, verify every output, print verdicts
demo: install
	@test -f $(KEYS)/chain.pem || $(BIN)/provenance keys init $(KEYS)
	rm -rf $(DEMO_OUT)
	$(BIN)/provenance sign sample_media/ --out $(DEMO_OUT) --keys $(KEYS)
	$(BIN)/provenance verify $(DEMO_OUT) --trust-anchors $(KEYS)/ca.pem

## test: linters, type check, the whole test suite, the docs build
test: lint typecheck unit docs bench-smoke

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install
	$(BIN)/mypy

unit: install node_modules/axe-core/axe.min.js
	$(BIN)/pytest -q -p no:cacheprovider --cov --cov-report=term:skip-covered

docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site

bench: install
	$(BIN)/python benchmarks/sign_verify.py
	$(BIN)/python benchmarks/metadata.py
	$(BIN)/python benchmarks/inventory.py
	$(BIN)/python benchmarks/robustness.py
	$(BIN)/python benchmarks/phash_speed.py
	$(BIN)/python benchmarks/index.py
	$(BIN)/python benchmarks/batch.py
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/audit_tamper.py

## bench-smoke: every benchmark runs (a few seconds each); figures come from `make bench`
bench-smoke: install
	$(BIN)/python benchmarks/sign_verify.py --quick --out build/bench/sign_verify.json >/dev/null
	$(BIN)/python benchmarks/metadata.py --quick --out build/bench/metadata.json >/dev/null
	$(BIN)/python benchmarks/inventory.py --quick --out build/bench/inventory.json >/dev/null
	$(BIN)/python benchmarks/robustness.py --quick --out build/bench/robustness.json >/dev/null
	$(BIN)/python benchmarks/phash_speed.py --quick --out build/bench/phash_speed.json >/dev/null
	$(BIN)/python benchmarks/index.py --quick --out build/bench/index.json >/dev/null
	$(BIN)/python benchmarks/batch.py --quick --out build/bench/batch.json >/dev/null
	$(BIN)/python benchmarks/overhead.py --quick --out build/bench/overhead.json >/dev/null
	$(BIN)/python benchmarks/audit_tamper.py --quick --out build/bench/audit_tamper.json >/dev/null

clean:
	rm -rf $(VENV) build $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache .coverage

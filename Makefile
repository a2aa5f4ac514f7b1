# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
KEYS := .provenance/keys
DEMO_OUT := demo-out

.PHONY: install demo test lint typecheck unit corpus docs package bench bench-smoke clean db-postgresql db-mariadb

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

## demo: development keys, sign every sample, verify every output, print verdicts,
## then strip one copy and write the compliance report (HTML, JSON; PDF when Chromium is there)
demo: install
	@test -f $(KEYS)/chain.pem || $(BIN)/provenance keys init $(KEYS)
	rm -rf $(DEMO_OUT)
	$(BIN)/provenance sign sample_media/ --out $(DEMO_OUT) --keys $(KEYS) --inventory $(DEMO_OUT)/inventory.sqlite
	$(BIN)/provenance verify $(DEMO_OUT) --trust-anchors $(KEYS)/ca.pem --inventory $(DEMO_OUT)/inventory.sqlite
	exiftool -q -all= -overwrite_original $(DEMO_OUT)/forest-path.jpg 2>/dev/null || cp sample_media/forest-path.jpg $(DEMO_OUT)/forest-path.jpg
	$(BIN)/provenance report $(DEMO_OUT) --inventory $(DEMO_OUT)/inventory.sqlite --trust-anchors $(KEYS)/ca.pem --keys $(KEYS) \
		--out $(DEMO_OUT)/report.html --out $(DEMO_OUT)/report.json \
		$$(command -v chromium >/dev/null 2>&1 && echo --out $(DEMO_OUT)/report.pdf) || test $$? -eq 1
	@echo "demo: open $(DEMO_OUT)/report.html (the report exits 1 because one copy lost its provenance)"

## test: linters, type check, the whole test suite, the docs build
test: lint typecheck unit docs package bench-smoke

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install
	$(BIN)/mypy

# --durations=20: every run lists its slowest tests, so a slow new one shows in CI's log.
# The corpus first (built once, from Debian packages: benchmarks/corpus.py): the pinned
# perceptual hashes of corpus photos are a test, which a fresh machine would skip.
unit: install node_modules/axe-core/axe.min.js corpus
	$(BIN)/pytest -q -p no:cacheprovider --durations=20 --cov --cov-report=term:skip-covered

## corpus: the benchmark corpus of real photographs (about 1 minute and 500 MB, once)
corpus: install
	$(BIN)/python benchmarks/corpus.py >/dev/null

docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site

## package: build the wheel and sdist, check them, install the wheel into a fresh venv and
## run the quick start from it (the distribution is product-provenance; it imports as provenance)
PKG := build/package
package: install
	rm -rf $(PKG) && mkdir -p $(PKG)
	$(BIN)/python -m build --outdir $(PKG)/dist . >$(PKG)/build.log 2>&1 || { cat $(PKG)/build.log; exit 1; }
	$(BIN)/twine check --strict $(PKG)/dist/*
	$(PYTHON) -m venv $(PKG)/venv
	$(PKG)/venv/bin/python -m pip install --quiet $(PKG)/dist/*.whl
	cd $(PKG) && venv/bin/provenance --version
	cd $(PKG) && venv/bin/provenance keys init keys >/dev/null
	cd $(PKG) && venv/bin/provenance sign $(CURDIR)/sample_media/forest-path.jpg --out signed --keys keys --inventory inv.sqlite >/dev/null
	cd $(PKG) && venv/bin/python -c "from provenance import TrustPolicy, verify; v = verify('signed/forest-path.jpg', trust=TrustPolicy.from_pem('keys/ca.pem')); assert v.status.value == 'trusted', v.status; print('package quick start:', v.status.value)"

bench: install
	$(BIN)/python benchmarks/sign_verify.py
	$(BIN)/python benchmarks/metadata.py
	$(BIN)/python benchmarks/inventory.py
	$(BIN)/python benchmarks/robustness.py
	$(BIN)/python benchmarks/phash_speed.py
	$(BIN)/python benchmarks/index.py
	$(BIN)/python benchmarks/batch.py
	$(BIN)/python benchmarks/cli_start.py
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/server_load.py
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
	$(BIN)/python benchmarks/cli_start.py --quick --out build/bench/cli_start.json >/dev/null
	$(BIN)/python benchmarks/dask_server.py --quick --out build/bench/dask_server.json >/dev/null
	$(BIN)/python benchmarks/overhead.py --quick --out build/bench/overhead.json >/dev/null
	$(BIN)/python benchmarks/server_load.py --quick --out build/bench/server_load.json >/dev/null
	$(BIN)/python benchmarks/audit_tamper.py --quick --out build/bench/audit_tamper.json >/dev/null
	$(BIN)/python benchmarks/rendition_marks.py --quick --out build/bench/rendition_marks.json >/dev/null
	$(BIN)/python benchmarks/copy_source.py --quick --draws 1 --out build/bench/copy_source.json >/dev/null

## db-postgresql / db-mariadb: start a throw-away local server to try the server backends;
## prints the PROVENANCE_INVENTORY to export, deletes everything on Ctrl-C
db-postgresql db-mariadb: install
	$(BIN)/python -m tests.servers $(@:db-%=%)

clean:
	rm -rf $(VENV) build $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache .coverage

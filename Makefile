# Two commands: `make run` opens the dashboard, `make test` runs every test. Both install whatever
# is missing (uv, the locked Python dependencies, a CJK font, Chromium for the browser tests, R's
# survey package for the reference checks) and are quick when everything is present.

SHELL := /bin/bash
PYTHON ?= python3
# uv on PATH, else the one `pip install --user` put in ~/.local/bin (often not on PATH, and not
# importable from inside the project's venv, where make runs again under pytest), else the module
USER_UV := $(HOME)/.local/bin/uv
UV = $$(command -v uv 2>/dev/null || { test -x "$(USER_UV)" && echo "$(USER_UV)"; } || echo "$(PYTHON) -m uv")
SUDO = $$([ "$$(id -u)" = 0 ] || echo sudo)
export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1
# An offline install (make install-offline) has everything locally: never reach a registry, use
# the bundled uv, skip the development tools (tests are not part of the bundle's wheels).
OFFLINE := $(wildcard .offline)
ifneq ($(OFFLINE),)
export UV_OFFLINE := 1
export UV_NO_DEV := 1
UV = $(CURDIR)/bin/uv
endif
BUNDLE ?= dist/cepingkanban-offline.tar.gz

.PHONY: run serve test check lint docs uv deps system-font system-browser system-r warehouse sample bench \
	bundle install-offline

run: deps system-font warehouse
	@$(UV) run --locked python -m compileall -q app.py pages pipelines
	$(UV) run --locked python -m pipelines.serve

# Serve the office network (docs/deploy.md): TLS with CERT/KEY (PEM files; required unless
# ADDRESS is 127.0.0.1), only the host names in HOSTS (comma-separated; default: this machine's
# names), security headers, XSRF on, sign-in to read (PUBLIC_READ=1 lets anyone read).
#   make serve ADDRESS=0.0.0.0 PORT=8443 CERT=/etc/ceping/cert.pem KEY=/etc/ceping/key.pem \
#              HOSTS=jdb.example.gov.cn
ADDRESS ?= 0.0.0.0
PORT ?= 8443
CERT ?=
KEY ?=
HOSTS ?=
PUBLIC_READ ?=
serve: deps system-font warehouse
	@$(UV) run --locked python -m compileall -q app.py asgi.py pages pipelines
	$(UV) run --locked python -m pipelines.serve --deploy --address "$(ADDRESS)" --port "$(PORT)" \
	  --cert "$(CERT)" --key "$(KEY)" --hosts "$(HOSTS)" $(if $(PUBLIC_READ),--public-read)

test: deps system-font system-browser system-r
	$(UV) run --locked pytest

# The inner loop (< 60 s): lint, then every test not marked slow (simulation, crash, load,
# notebook), browser (real Chromium) or r (runs R live). `make test` runs them all.
check: deps lint
	$(UV) run --locked pytest -q -n 2 -m "not slow and not browser and not r"

lint: deps
	$(UV) run --locked ruff check .

# docs/cli.md is generated from the argparse definitions (tests/test_docs.py checks it matches).
docs: deps
	$(UV) run --locked python -c 'from pipelines.cli import write_reference; write_reference()'

uv:
	@test -n "$(OFFLINE)" || command -v uv >/dev/null 2>&1 || test -x "$(USER_UV)" || \
	  $(PYTHON) -m uv --version >/dev/null 2>&1 || \
	  $(PYTHON) -m pip install --quiet --user uv 2>/dev/null || \
	  $(PYTHON) -m pip install --quiet --user --break-system-packages uv

# Bytecode is compiled at install: without it every server start recompiles streamlit, altair,
# pandas and polars from source (seconds of a cold start; some shells set PYTHONDONTWRITEBYTECODE).
deps: uv
	@$(UV) sync --locked --quiet --compile-bytecode

# Chinese text in charts and exported PNGs needs a CJK font (else it renders as empty boxes).
system-font:
	@dpkg -s fonts-noto-cjk >/dev/null 2>&1 || dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq fonts-noto-cjk >/dev/null; }

# Browser tests drive Debian's Chromium through Playwright (Playwright's own download is unreachable).
system-browser:
	@test -x /usr/bin/chromium || \
	  { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq chromium >/dev/null; }

# Statistics are checked against R's survey package (tests/fixtures/r_survey/reference.R runs live).
system-r:
	@Rscript -e 'library(survey)' >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends r-base-core r-cran-survey >/dev/null; }

bench: deps system-r
	$(UV) run --locked python bench/run_all.py

# One archive for an office without internet (app, locked wheels for Linux x86-64 / Python 3.11,
# the CJK font .debs, the sample); on the target machine, unpack it and run make install-offline.
bundle: uv
	@UV="$(UV)" bash scripts/bundle.sh "$(BUNDLE)"

install-offline:
	@bash scripts/install-offline.sh

# Build warehouse.duckdb (or $CEPING_DB) from surveys/ on first run (a no-op when it exists).
warehouse: deps
	@$(UV) run --locked python -m pipelines build $${CEPING_DB:+--db "$$CEPING_DB"}

# Regenerate the bundled sample province (deterministic; a test checks the bytes).
sample: deps
	$(UV) run --locked python -m pipelines sample

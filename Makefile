# `make run` and `make test` are the only two commands a newcomer needs: both bootstrap .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# uv, pinned with hashes in requirements-uv.txt, in a virtualenv of its own (`make clean` keeps it).
UV_HOME := .uv
UV := $(UV_HOME)/bin/uv
# uv installs into .venv with this interpreter, never one it downloads.
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never

.PHONY: install lock lock-upgrade run test check lint format typecheck bench demo fakes eval-identity deploy-check image-test up down logs clean

install: $(STAMP)

# Exactly what uv.lock says (hashes checked), never a fresh resolution: a lock that no longer
# matches pyproject.toml stops here with what to do, instead of silently installing something else.
$(STAMP): pyproject.toml uv.lock $(UV)
	@$(UV) lock --check --quiet --python $(PYTHON) 2>/dev/null || { \
	  echo "pyproject.toml and uv.lock disagree: a dependency was added, removed or changed." >&2; \
	  echo "Run 'make lock' to update uv.lock, then commit pyproject.toml and uv.lock together." >&2; \
	  exit 1; }
	$(UV) sync --locked --extra dev --python $(PYTHON) --quiet
	touch $(STAMP)

$(UV): requirements-uv.txt
	test -x $(UV_HOME)/bin/python || $(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements-uv.txt
	touch $(UV)

# Re-resolve uv.lock after pyproject.toml changed, keeping every other pin where it is.
lock: $(UV)
	$(UV) lock --python $(PYTHON)

# Move every dependency to the newest release pyproject.toml allows.
lock-upgrade: $(UV)
	$(UV) lock --upgrade --python $(PYTHON)

run: $(STAMP)
	$(BIN)/kasparro serve

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench deploy
	$(BIN)/ruff format --check src tests bench deploy

format: $(STAMP)
	$(BIN)/ruff format src tests bench deploy
	$(BIN)/ruff check --fix src tests bench deploy

typecheck: $(STAMP)
	$(BIN)/mypy src bench deploy

check: lint typecheck deploy-check test

bench: $(STAMP)
	$(BIN)/python -m bench

# Years of history (100M rows, ~35 GB in a scratch database kasparro_scale; hours on two cores;
# not in CI). Same rows per asset, a tenth of the disk, generated in ~2 min:
# make bench-scale ARGS="--rows 10000000 --assets 1000 --database kasparro_scale_small".
.PHONY: bench-scale
bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale $(ARGS)

demo: $(STAMP)
	$(BIN)/kasparro demo

fakes: $(STAMP)
	$(BIN)/kasparro fakes

eval-identity: $(STAMP)
	$(BIN)/kasparro identity evaluate

# Refreshes the console's vendored JavaScript (uPlot; axe-core for the tests) from the npm
# registry at the versions pinned in src/kasparro/api/ui/vendor.py, integrity checked. Needs npm;
# running and testing the project do not.
.PHONY: vendor-js
vendor-js: $(STAMP)
	$(BIN)/python -m kasparro.api.ui.vendor

# Retakes the README's screenshots of the console (docs/screenshots/) with its browser tests;
# `make test` takes them into a temporary directory and leaves the checkout as it was.
.PHONY: screenshots
screenshots: $(STAMP)
	UPDATE_SCREENSHOTS=1 $(BIN)/pytest -q tests/ui/test_console_browser.py -p no:cacheprovider

deploy-check: $(STAMP)
	$(BIN)/python -m deploy.check

# Builds the image and runs it for real (SQLite, PostgreSQL, the compose stack); needs Docker.
image-test:
	bash deploy/image-test.sh

up:
	docker compose up --build -d

down:
	docker compose down

logs:
	docker compose logs -f

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

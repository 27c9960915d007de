# estate-gateway: `make demo` and `make test` do all the set-up on a fresh Debian/Ubuntu machine.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: venv system-deps demo test bench soak lint lock clean install

venv: $(STAMP)

# exact versions from the lock (pyproject.toml keeps the ranges); the project itself editable, without deps
$(STAMP): pyproject.toml requirements-dev.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.lock
	$(BIN)/pip install -q --no-deps -e .
	$(BIN)/pip install -q --no-deps "dc09-spt==0.0.4"   # DC-09 test peer; its pycrypto dependency no longer builds
	touch $(STAMP)

# re-pin after changing a range in pyproject.toml: requirements.lock (a site) and requirements-dev.lock (tests, lint)
lock: venv
	$(BIN)/pip install -q pip-tools
	$(BIN)/pip-compile -q --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
	$(BIN)/pip-compile -q --strip-extras --no-emit-index-url --no-emit-find-links --extra test --extra lint \
	    -o requirements-dev.lock pyproject.toml

# ruff (rules and complexity limits in pyproject.toml), mypy, and the size limits (file 400, class 300, function 60 lines)
lint: venv
	$(BIN)/ruff check gateway drivers examples
	$(BIN)/ruff check --select F,E9 tests bench scripts
	$(BIN)/mypy
	$(BIN)/python scripts/lint_sizes.py gateway drivers examples

system-deps:
	bash scripts/system-deps.sh

demo: venv
	EGW_NO_BROWSER=1 EGW_NO_RABBITMQ=1 bash scripts/system-deps.sh
	bash scripts/demo.sh

test: venv system-deps lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: venv
	EGW_NO_BROWSER=1 bash scripts/system-deps.sh
	bash scripts/bench.sh

soak: venv
	EGW_NO_BROWSER=1 EGW_NO_RABBITMQ=1 bash scripts/system-deps.sh
	bash scripts/soak.sh

# PREFIX (default /opt/estate-gateway) and DESTDIR (staging root, for packaging) are honoured
install:
	PREFIX="$(or $(PREFIX),/opt/estate-gateway)" DESTDIR="$(DESTDIR)" PY="$(PY)" bash scripts/install.sh

clean:
	rm -rf $(VENV) var build dist *.egg-info .pytest_cache .hypothesis

# estate-gateway: `make demo` and `make test` do all the set-up on a fresh Debian/Ubuntu machine.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: venv system-deps demo test bench soak lint clean install

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

system-deps:
	bash scripts/system-deps.sh

demo: venv
	EGW_NO_BROWSER=1 bash scripts/system-deps.sh
	bash scripts/demo.sh

test: venv system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: venv
	EGW_NO_BROWSER=1 bash scripts/system-deps.sh
	bash scripts/bench.sh

soak: venv
	EGW_NO_BROWSER=1 bash scripts/system-deps.sh
	bash scripts/soak.sh

# PREFIX (default /opt/estate-gateway) and DESTDIR (staging root, for packaging) are honoured
install:
	PREFIX="$(or $(PREFIX),/opt/estate-gateway)" DESTDIR="$(DESTDIR)" PY="$(PY)" bash scripts/install.sh

clean:
	rm -rf $(VENV) var build dist *.egg-info .pytest_cache .hypothesis

# slim: `make run` builds the default target; `make test` runs the test suite.
PY      ?= python3.11
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
TESTS   ?= tests
PYTEST_ARGS ?= -q -m "not slow"

.PHONY: setup run test test-slow bench clean lock

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.txt requirements-dev.txt requirements.lock slim/toolchain.py
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch==2.13.0 first and pinned: an unpinned torch pulls several GB of CUDA wheels
	$(BIN)/pip install -q -c requirements.lock torch==2.13.0
	$(BIN)/pip install -q -c requirements.lock -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install -q -c requirements.lock --no-deps -e .
	# llama.cpp's converter + gguf-py from the sdist of the installed llama-cpp-python (one revision)
	$(BIN)/python -m slim.toolchain install
	touch $(STAMP)

run: setup
	$(BIN)/python -m slim method=q4_k_m hardware=apple8gb

test: setup
	$(BIN)/python -m pytest $(TESTS) $(PYTEST_ARGS)

test-slow: setup
	$(BIN)/python -m pytest $(TESTS) -q -m slow

bench: setup
	$(BIN)/python bench/hashing.py
	$(BIN)/python bench/rebuild.py
	$(BIN)/python bench/quantize_gguf.py
	$(BIN)/python bench/sweep.py

# regenerate the lock from the current environment (after a deliberate upgrade)
lock:
	$(BIN)/pip freeze --exclude-editable | grep -v '^slim' > requirements.lock

clean:
	rm -rf builds/.staging

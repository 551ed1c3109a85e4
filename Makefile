# slim: `make run` builds the default target; `make test` runs the test suite.
PY      ?= python3.11
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
TESTS   ?= tests
PYTEST_ARGS ?= -q -m "not slow"

.PHONY: setup setup-cuda run test test-slow bench clean lock

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

# GPUs (docs: README "GPUs"): llama-cpp-python rebuilt with CUDA when nvcc is present (CPU build
# otherwise; --no-cache-dir: a cached CPU wheel would be reinstalled), and PyPI's torch wheel of
# the pinned version (CUDA-enabled on Linux) instead of the CPU one
setup-cuda: setup
	@if command -v nvcc >/dev/null 2>&1; then \
	  echo "nvcc found: building llama-cpp-python with CUDA (GGML_CUDA=on; takes a while)"; \
	  CMAKE_ARGS="-DGGML_CUDA=on" FORCE_CMAKE=1 $(BIN)/pip install -q --force-reinstall --no-deps \
	    --no-cache-dir --no-binary llama-cpp-python -c requirements.lock llama-cpp-python; \
	  $(BIN)/pip install -q --force-reinstall --no-deps --index-url https://pypi.org/simple \
	    "torch==$$(grep '^torch==' requirements.lock | cut -d= -f3)"; \
	else \
	  echo "nvcc not found: keeping the CPU builds of llama-cpp-python and torch"; \
	fi
	$(BIN)/python -c "import llama_cpp, torch; print('llama.cpp GPU offload:', llama_cpp.llama_supports_gpu_offload(), '| torch CUDA:', torch.cuda.is_available())"

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

# The README's two commands: `make train` and `make test`. Each sets itself up from nothing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
FASHION_DIR := /usr/share/datasets/fashion-mnist
RUN ?= runs/lenet5-fashion_mnist
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup data web-deps cxx test test-fast lint pytest pytest-tf-keras train weights bench clean

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Fashion-MNIST from Debian's package where apt exists; elsewhere the readers fall back to
# --data-dir, $$CONVZOO_DATA, the Keras cache or tensorflow-datasets.
data:
	@if [ -f $(FASHION_DIR)/train-images-idx3-ubyte.gz ]; then \
		echo "Fashion-MNIST: $(FASHION_DIR)"; \
	elif command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
		{ $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q dataset-fashion-mnist; }; \
	else \
		echo "apt-get not found: Fashion-MNIST will come from \$$CONVZOO_DATA, the Keras cache or tensorflow-datasets"; \
	fi

# Debian's g++ where apt exists: the tflm export's tests compile its generated C++ sources.
cxx:
	@if command -v g++ >/dev/null 2>&1; then \
		true; \
	elif command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get install -y -q g++ >/dev/null 2>&1 || \
		{ $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q g++; }; \
	else \
		echo "apt-get not found: install a C++17 compiler as g++ for the tflm export's tests"; \
	fi

# The exported web page's runtime (LiteRT.js, web/package-lock.json) and, where apt exists,
# Debian's chromium for the page's browser tests (driven by the playwright Python package with
# executable_path: no browser download).
WEB_MODULES := web/node_modules/.package-lock.json
web-deps: $(WEB_MODULES)
	@if command -v chromium >/dev/null 2>&1 || [ -n "$$CONVZOO_CHROMIUM" ]; then \
		true; \
	elif command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium; }; \
	else \
		echo "apt-get not found: install Chromium or set \$$CONVZOO_CHROMIUM for the web page's browser check"; \
	fi

$(WEB_MODULES): web/package.json web/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		cd web && npm ci --no-audit --no-fund --loglevel=error; \
	else \
		echo "npm not found: the web export format needs Node.js/npm (npm ci in web/)"; \
	fi

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Two workers (the machines have two cores; most tests keep one busy); a module's tests, and
# so its trained fixtures, stay in one worker.
XDIST := -n 2 --dist loadfile

pytest: setup data web-deps cxx
	$(PY) -m pytest -q $(XDIST)

# The layer and zoo suites again in the legacy tf_keras world (DESIGN.md: two Keras worlds).
pytest-tf-keras: setup
	TF_USE_LEGACY_KERAS=1 $(PY) -m pytest -q $(XDIST) -m "not keras3_only" tests/layers tests/zoo

test: lint pytest pytest-tf-keras

# The inner loop (not what CI runs): layers, zoo and the unit tests, with fewer hypothesis
# examples per property; no subprocesses, trainings, TFLite/ONNX conversions of whole zoo
# models or browser.
FAST_TESTS := tests/layers tests/zoo tests/training/test_record.py tests/training/test_atomic.py \
	tests/training/test_data_readers.py tests/training/test_pipeline_gather.py
FAST_SKIP := --ignore tests/zoo/test_zoo_worlds.py --ignore tests/zoo/test_zoo_export.py
test-fast: setup data
	HYPOTHESIS_PROFILE=fast $(PY) -m pytest -q $(XDIST) -m "not slow" $(FAST_SKIP) $(FAST_TESTS)

train: setup data web-deps
	$(PY) -m training --model lenet5 --dataset fashion_mnist --run-dir $(RUN)
	$(PY) -m export $(RUN)

# Retrains the weights the zoo ships (zoo/weights/) with each model's defaults, reproducibly
# (--deterministic, float32), and rewrites their manifests; commit the result.
weights: setup data
	$(PY) -m training.ship_weights

bench: setup data
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis

# The README's two commands: `make test` and `make demo`. Both set up from nothing
# (.venv, the pinned stack, the compiled extension) and skip what is already done.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -c requirements.txt
STAMPS := $(VENV)/.stamps
JOBS ?= $(shell nproc)
EXT_SOURCES := $(shell find ops/csrc -name '*.cpp' -o -name '*.cu' -o -name '*.h' -o -name '*.cuh')
CXX_SOURCES := $(EXT_SOURCES) $(shell find ops/onnxruntime ops/tensorrt -name '*.cc' -o -name '*.cpp' -o -name '*.h' 2>/dev/null) tools/analysis_tools/msda_kernel_timing.cu
# Two workers, each test file whole on one of them (its module fixtures built once): on the
# 2-core CPU machine 545 s against 692 s in one process. PYTEST_ARGS= runs them in one.
# A test that hangs (a lost subprocess, a collective waiting forever) fails after 15
# minutes with its stack, instead of holding CI's 90 minutes; the longest takes 90 s.
PYTEST_ARGS ?= -n 2 --dist loadfile --timeout 900

# Packages of each install pass; their versions are pinned in requirements.txt.
BUILD_PACKAGES := setuptools wheel ninja
RUNTIME_PACKAGES := numpy mmengine h5py scipy onnx onnxruntime onnxscript opencv-python av \
	tensorboard pycocotools shapely terminaltables numba pyquaternion trimesh six tqdm scikit-learn cachetools tabulate pytest \
	pytest-xdist pytest-timeout ruff clang-format
NO_DEPS_PACKAGES := mmdet mmdet3d trackeval nuscenes-devkit

# ONNX Runtime custom-op library for nv::MSDA, built against the headers of Debian
# trixie's libonnxruntime-dev (fetched by ops/onnxruntime/fetch_sdk.sh).
ORT_SDK := build/onnxruntime-sdk
ORT_HEADER := $(ORT_SDK)/usr/include/onnxruntime/onnxruntime_cxx_api.h
ORT_LIBRARY := build/onnxruntime/libmmsparse4d_onnxruntime.so
CXX ?= g++

.PHONY: install test lint format demo clean distclean onnxruntime-ops tensorrt-plugin

install: $(STAMPS)/ext $(ORT_LIBRARY)

onnxruntime-ops: $(ORT_LIBRARY)

$(ORT_HEADER):
	bash ops/onnxruntime/fetch_sdk.sh $(ORT_SDK)

$(ORT_LIBRARY): ops/onnxruntime/msda_onnxruntime.cc ops/csrc/cpu/msda_cpu_kernels.h $(ORT_HEADER)
	@mkdir -p $(@D)
	$(CXX) -std=c++17 -O3 -fPIC -shared -Wall -Wextra -Werror \
		-I $(ORT_SDK)/usr/include/onnxruntime $< -o $@

# A machine whose python3 already has a CUDA build of torch keeps it (the venv sees the
# system site-packages); everywhere else the pinned CPU torch is installed.
$(STAMPS)/venv:
	@if $(PYTHON) -c 'import sys, torch; sys.exit(torch.version.cuda is None)' 2>/dev/null; then \
		echo "using the CUDA torch of $(PYTHON)"; \
		$(PYTHON) -m venv --system-site-packages $(VENV); \
	else \
		$(PYTHON) -m venv $(VENV); \
		$(PIP) torch; \
	fi
	$(PIP) $(BUILD_PACKAGES)
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/deps: requirements.txt | $(STAMPS)/venv
	$(PIP) $(RUNTIME_PACKAGES)
	@# mmcv's ops are left out silently under build isolation; CPU ops suffice here.
	$(PY) -c 'import mmcv.ops' 2>/dev/null || \
		MMCV_WITH_OPS=1 MAX_JOBS=$(JOBS) $(PIP) --no-build-isolation mmcv
	$(PIP) --no-deps $(NO_DEPS_PACKAGES)
	$(PY) -c 'import mmcv.ops, mmdet.models, mmdet3d.registry, trackeval.metrics, nuscenes.eval.detection.algo'
	@touch $@

$(STAMPS)/ext: $(STAMPS)/deps setup.py $(EXT_SOURCES)
	MAX_JOBS=$(JOBS) $(PY) setup.py -q build_ext --inplace
	@# The repository root on the venv's path: mmsparse4d and projects/ import from here.
	$(PY) -c 'import site, os; open(os.path.join(site.getsitepackages()[0], "mmsparse4d-dev.pth"), "w").write(os.getcwd() + "\n")'
	@touch $@

# The TensorRT plugin compiles against TensorRT's public headers (not installable here):
#   make tensorrt-plugin TENSORRT_INCLUDE_DIR=/path/to/TensorRT/include
tensorrt-plugin:
	@test -f "$(TENSORRT_INCLUDE_DIR)/NvInferRuntime.h" || { \
		echo "make tensorrt-plugin needs TENSORRT_INCLUDE_DIR=<TensorRT>/include" >&2; exit 2; }
	cmake -S ops/tensorrt -B build/tensorrt -DTENSORRT_INCLUDE_DIR=$(abspath $(TENSORRT_INCLUDE_DIR))
	cmake --build build/tensorrt -j$(JOBS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@# One format, enforced: no file opts out of the formatter.
	@! grep -rn --include='*.py' -E '# fmt: (skip|off)' mmsparse4d projects configs tools tests setup.py
	$(VENV)/bin/clang-format --dry-run -Werror $(CXX_SOURCES)

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
	$(VENV)/bin/clang-format -i $(CXX_SOURCES)

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

demo: install
	$(PY) tools/demo.py

clean:
	rm -rf build/temp* build/lib* build/onnxruntime build/tensorrt mmsparse4d/_ext*.so \
		.pytest_cache .ruff_cache $(STAMPS)/ext

distclean: clean
	rm -rf $(VENV) work_dirs build

# Gapfill: every target installs what it needs and skips what is already there.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_SYS := /usr/bin/python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := qgis python3-qgis qgis-providers python3-gdal gdal-bin python3-venv
GAPFILL_DATA ?= $(abspath ../shared/data)
export GAPFILL_DATA
export QT_QPA_PLATFORM := offscreen
RUN := PYTHONPATH=$(CURDIR)/scripts:$(CURDIR)/benchmarks $(PY)
# bench-quality: gapfill:buildgapmask METHOD of the other dates' masks (0 spectral, 6 ukis-csmask…)
MASK_METHOD ?= 0

.PHONY: help deps venv test lint test-lts lts-root demo bench bench-quality package clean

help:
	@echo "make demo    fill clouds of real Sentinel-2 images (other dates; S1 + bundled model) into demo-output/"
	@echo "make test    ruff + pytest on real QGIS, GDAL, qgis_process"
	@echo "make test-lts  the suite on QGIS 3.40 LTR, Python 3.13, numpy 2 (Debian 13 root in .lts-root/)"
	@echo "make bench   speed and memory of the fills and gap masks on large mosaics of the real samples"
	@echo "make bench-quality  quality of every fill method and gap-mask method on fixed real-data cases"
	@echo "make package plugin zip for QGIS 'Install from ZIP' in dist/"
	@echo "make clean   remove the virtual environment and generated files"

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt | deps
	test -x $(PY) || $(PYTHON_SYS) -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -c constraints.txt
	$(PY) -c "from osgeo import gdal_array; import onnxruntime, torch, numpy, ukis_csmask, s2cloudless; assert int(numpy.__version__.split('.')[0]) < 2"
	touch $@

venv: deps $(VENV)/.installed

lint: venv
	$(VENV)/bin/ruff check .

test: venv lint
	$(VENV)/bin/python -m pytest -p no:cacheprovider tests

# QGIS 3.40 LTR (Debian 13 root made with debootstrap; see scripts/lts_root.sh): every test
# but those needing PyTorch, which has no CPU build for Python 3.13 on the registry.
# The root is $LTS_ROOT (default .lts-root/).
LTS_SCRIPT := scripts/lts_root.sh
LTS_PY := /opt/gapfill-venv/bin/python

lts-root:
	$(LTS_SCRIPT) build

test-lts: lts-root
	$(LTS_SCRIPT) run $(LTS_PY) -m pytest -p no:cacheprovider --without-torch tests

demo: venv
	$(RUN) scripts/demo.py --output demo-output

bench: venv
	$(RUN) benchmarks/bench_classical.py --output bench-output
	$(RUN) benchmarks/bench_onnx.py --output bench-output
	$(RUN) benchmarks/bench_prepare.py --output bench-output
	$(RUN) benchmarks/bench_mask_speed.py --output bench-output
	$(RUN) benchmarks/bench_distributed.py --output bench-output --scenes 6
	$(RUN) benchmarks/bench_ssim.py

bench-quality: venv
	$(RUN) benchmarks/bench_quality.py --output bench-output/quality --mask-method $(MASK_METHOD)
	$(RUN) benchmarks/bench_timeseries.py $(GAPFILL_DATA)/s5p_co/training models/stpconv-s5p-co.onnx
	$(RUN) benchmarks/bench_masks.py --output bench-output/masks

package: deps
	$(PYTHON_SYS) scripts/make_package.py --output dist

clean:
	rm -rf $(VENV) demo-output bench-output dist .pytest_cache .ruff_cache
	$(LTS_SCRIPT) remove
	find . -path ./.lts-root -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

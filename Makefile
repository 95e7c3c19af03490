# ksef.certificates developer entry points. See README.md.
SHELL := /bin/bash
PY312 := $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3))
PYTHON ?= $(if $(PY312),$(PY312),python3)
VENV := .venv
VPY := $(VENV)/bin/python

.PHONY: venv emulator test demo bench clean

venv: $(VENV)/.stamp

$(VENV)/.stamp: requirements/dev.txt
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q -r requirements/dev.txt
	$(VPY) -m pip install -q -e tests/emulator
	touch $@

emulator: venv
	$(VPY) -m ksef_emulator --host 127.0.0.1 --port 8443 --state build/emulator.sqlite --tls-ca-file build/emulator-ca.pem

clean:
	rm -rf build tests/output

# ksef.certificates developer entry points. `make help` lists them; docs/TESTING.md explains them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Newest end: ansible-core from requirements/dev.txt on Python 3.12 (ansible-core 2.20+ needs 3.12+).
# Old end: ansible-core 2.16 (the oldest meta/runtime.yml allows) on Python 3.11.
PYENV_VERSIONS := $(HOME)/.pyenv/versions
PY312 := $(lastword $(sort $(wildcard $(PYENV_VERSIONS)/3.12*/bin/python3)))
PY311 := $(lastword $(sort $(wildcard $(PYENV_VERSIONS)/3.11*/bin/python3)))
PYTHON ?= $(if $(PY312),$(PY312),python3)
PYTHON_OLD ?= $(if $(PY311),$(PY311),python3)

VENV := .venv
VENV_OLD := .venv-2.16
VPY := $(VENV)/bin/python
VPY_OLD := $(VENV_OLD)/bin/python
# The emulator (tests/emulator) is installed editable into .venv; the wildcard keeps `make venv` usable in a
# tree without it (the collection tarball leaves tests/emulator out).
EMULATOR_PROJECT := $(wildcard tests/emulator/pyproject.toml)
TEST_REQUIREMENTS := tests/unit/requirements.txt tests/integration/requirements.txt
# Others import the collection through this symlink (pytest, ansible -m); keep it alive.
COLLECTION_LINK := build/collections/ansible_collections/ksef/certificates

# Extra arguments, e.g. `make sanity SANITY_ARGS='--test pep8'` or `make integration-latest TARGETS=ksef_session`.
SANITY_ARGS ?=
UNITS_ARGS ?=
TARGETS ?=
EMULATOR_TEST_ARGS ?=
# Seconds the emulator keeps an enrollment in processing (short, so tests poll at least once).
EMULATOR_PROCESSING_DELAY ?= 1
# Integration targets run side by side on this many workers, each with its own emulator.
INTEGRATION_JOBS ?= 2

.PHONY: help venv collection-link deps-system \
	sanity sanity-latest sanity-2.16 units units-latest units-all units-2.16 emulator-tests \
	integration integration-latest integration-2.16 awx-tests awx-collection lifecycle lint test emulator clean mutation

help:
	@echo 'make venv             .venv (newest ansible-core) and .venv-2.16 (old end), emulator editable'
	@echo 'make deps-system      apt-get install shellcheck xmlsec1 openssl softhsm2 strace faketime when missing (root only)'
	@echo 'make sanity           ansible-test sanity at both ends (sanity-latest, sanity-2.16)'
	@echo 'make units            ansible-test units: units-latest (Python 3.9 and 3.13), units-2.16 (its Python 3.11);'
	@echo '                      units-all: every Python 3.9-3.13'
	@echo 'make emulator-tests   pytest tests/emulator/tests'
	@echo 'make integration      ansible-test integration against the emulator (integration-latest: all targets,'
	@echo '                      integration-2.16: targets aliased ksef/smoke); TARGETS=name limits the latest run'
	@echo 'make awx-tests        the playbooks through ansible-runner with the AWX credential injected (own emulator)'
	@echo 'make lifecycle        scheduled runs through two certificate renewals in simulated time, libfaketime (own emulator)'
	@echo 'make lint             ruff, ansible-lint, antsibull-changelog lint, collection build + tarball check, ansible-builder introspect'
	@echo 'make test             all of the above with a per-stage summary (what CI runs)'
	@echo 'make mutation         mutmut over plugins/module_utils, judged by the unit tests (not part of make test;'
	@echo '                      MUTATION_PATHS=plugins/module_utils/_engine/decide.py narrows it)'
	@echo 'make emulator         run the emulator in the foreground on https://127.0.0.1:8443/v2'
	@echo 'make demo             provision three local demo hosts against the emulator (demo-clean: start over)'
	@echo 'make demo-up          keep the demo emulator running, write build/demo/env.sh (demo-down: stop it)'

# ---------------------------------------------------------------------------------------------
# Environments

venv: $(VENV)/.stamp $(VENV_OLD)/.stamp collection-link

$(VENV)/.stamp: requirements/dev.txt requirements/demo.txt $(TEST_REQUIREMENTS) $(EMULATOR_PROJECT)
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q -r requirements/dev.txt $(addprefix -r ,$(TEST_REQUIREMENTS))
	$(if $(EMULATOR_PROJECT),$(VPY) -m pip install -q -e tests/emulator)
	touch $@

$(VENV_OLD)/.stamp: requirements/ansible-2.16.txt $(TEST_REQUIREMENTS)
	test -x $(VPY_OLD) || $(PYTHON_OLD) -m venv $(VENV_OLD)
	$(VPY_OLD) -m pip install -q -r requirements/ansible-2.16.txt $(addprefix -r ,$(TEST_REQUIREMENTS))
	touch $@

collection-link:
	@mkdir -p $(dir $(COLLECTION_LINK))
	@if [ "$$(readlink $(COLLECTION_LINK) || true)" != "$(CURDIR)" ]; then ln -sfn $(CURDIR) $(COLLECTION_LINK); echo "linked $(COLLECTION_LINK) -> $(CURDIR)"; fi

# tool:package pairs; softhsm2 (a PKCS#11 token in software) stands in for a card or HSM in the PKCS#11 tests.
# strace: tests/unit/plugins/modules/test_file_modes_trace.py traces the key and backup writes (issue 14).
# faketime (libfaketime): the lifecycle simulation moves the clock of the emulator and of Ansible (make lifecycle).
SYSTEM_TOOLS := shellcheck:shellcheck xmlsec1:xmlsec1 openssl:openssl softhsm2-util:softhsm2 strace:strace faketime:faketime

deps-system:
	@missing=; for pair in $(SYSTEM_TOOLS); do command -v $${pair%%:*} >/dev/null || missing="$$missing $${pair#*:}"; done; \
	if [ -z "$$missing" ]; then echo "deps-system: shellcheck, xmlsec1, openssl, softhsm2, strace and faketime are present"; \
	elif [ "$$(id -u)" != 0 ]; then echo "deps-system: missing:$$missing; not root, skipping (install them with apt-get)"; \
	else echo "deps-system: installing$$missing"; apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

# ---------------------------------------------------------------------------------------------
# ansible-test (tools/ansible-test.sh mirrors the repo into build/ansible_collections/ksef/certificates)

sanity: sanity-latest sanity-2.16

# --venv: ansible-test builds its own venv per sanity test; compile and import run on every
# python3.9 ... python3.13 that tools/ansible-test.sh finds under ~/.pyenv/versions.
sanity-latest: venv
	tools/ansible-test.sh $(VENV) sanity --venv --color no $(SANITY_ARGS)

# pylint runs at the newest end only (a newer, stricter pylint); the old end checks what differs there:
# compile/import on its Pythons, validate-modules, the boilerplate tests, pep8 and the rest.
SANITY_2_16_ARGS ?= --skip-test pylint
sanity-2.16: venv
	tools/ansible-test.sh $(VENV_OLD) sanity --venv --color no $(SANITY_2_16_ARGS) $(SANITY_ARGS)

units: units-latest units-2.16

# --venv: ansible-test makes a venv per Python and installs pytest and tests/unit/requirements.txt into it.
# `make test` runs the two ends the modules support (UNITS_PYTHONS, 3.9 and 3.13); `make units-all` runs
# every Python 3.9 ... 3.13 from pyenv (the middle ones cost about 40 s each and have never differed).
UNITS_PYTHONS ?= 3.9 3.13
units-latest: venv
	@case ' $(UNITS_ARGS) ' in *' --python '*) pythons=given;; *) pythons='$(UNITS_PYTHONS)';; esac; rc=0; \
	for py in $$pythons; do \
		if [ $$py = given ]; then set -- ; else set -- --python $$py; fi; \
		echo "units-latest: ansible-test units $$* $(UNITS_ARGS)"; \
		tools/ansible-test.sh $(VENV) units --venv --color no "$$@" $(UNITS_ARGS) || rc=1; \
	done; exit $$rc

units-all: venv
	tools/ansible-test.sh $(VENV) units --venv --color no $(UNITS_ARGS)

# The old end runs on its controller Python only (3.11): the Python spread is covered above, and
# this stage is about ansible-core 2.16's module_utils API.
units-2.16: venv
	tools/ansible-test.sh $(VENV_OLD) units --venv --color no \
		--python "$$($(VPY_OLD) -c 'import sys; print("%d.%d" % sys.version_info[:2])')" $(UNITS_ARGS)

integration: integration-latest integration-2.16

integration-latest: venv
	tools/run-integration.sh $(VENV) --jobs $(INTEGRATION_JOBS) --processing-delay $(EMULATOR_PROCESSING_DELAY) -- $(TARGETS)

# The old end runs the representative subset: targets whose aliases contain ksef/smoke.
integration-2.16: venv
	tools/run-integration.sh $(VENV_OLD) --jobs $(INTEGRATION_JOBS) --processing-delay $(EMULATOR_PROCESSING_DELAY) -- ksef/smoke/

# ---------------------------------------------------------------------------------------------
# Emulator

# pytest's exit status 5 means "no tests collected": an EMULATOR_TEST_ARGS selection that matches nothing.
emulator-tests: venv
	cd tests/emulator && rc=0 && ../../$(VPY) -m pytest -p no:cacheprovider -q $(EMULATOR_TEST_ARGS) tests || rc=$$?; \
	if [ $$rc = 5 ]; then echo "emulator-tests: no tests collected"; rc=0; fi; exit $$rc

emulator: venv
	mkdir -p build/emulator
	$(VPY) -m ksef_emulator --host 127.0.0.1 --port 8443 --state build/emulator/state.sqlite \
		--tls-ca-file build/emulator/ca.pem --ready-file build/emulator/ready.json --record-dir build/emulator/requests

# ---------------------------------------------------------------------------------------------
# AWX: provision and report through ansible-runner, the credential type's injectors rendered as AWX
# renders them, against an emulator the test starts itself (tools/with-emulator.sh).

AWX_COLLECTION_STAMP := build/awx-collections/.stamp

awx-tests: venv awx-collection
	$(VPY) -m pytest -q -p no:cacheprovider tests/awx/test_runner.py tests/awx/test_project.py

# awx.awx (test only) from the `ansible` wheel on PyPI, pinned in requirements/awx-collection.txt: only the
# collection is extracted, nothing is installed into the venvs.
awx-collection: $(AWX_COLLECTION_STAMP)

$(AWX_COLLECTION_STAMP): requirements/awx-collection.txt tests/awx/awx_collection.py | venv
	$(VPY) tests/awx/awx_collection.py requirements/awx-collection.txt build/awx-download build/awx-collections
	touch $@

# ---------------------------------------------------------------------------------------------
# Lifecycle: scheduled runs (module path and role path) through two renewals of every certificate in simulated time, the clock of
# the emulator and of Ansible moved together by libfaketime (docs/TESTING.md, "The lifecycle simulation").

lifecycle: venv
	$(VPY) -m pytest -q -p no:cacheprovider tests/lifecycle/test_lifecycle.py

# ---------------------------------------------------------------------------------------------
# Lint and packaging

lint: venv
	tools/lint.sh $(VENV)

# ---------------------------------------------------------------------------------------------
# Everything, as CI runs it (.ci/run)

# Stages joined with '+' run side by side: each pair is one that computes (sanity, units) beside one that
# mostly waits on emulators and processing delays, and no pair shares an ansible-test mirror
# (sanity-latest, units-latest and lint use build/ansible_collections; the 2.16 stages build/venv-2.16).
# Integration runs on 3 workers here: its targets wait on emulators, processing delays and pacing about a
# third of the time (953 s on 2 workers for 1,850 s of targets), and units-2.16 and lint, which share no mirror
# with it, run beside it.
test:
	INTEGRATION_JOBS=3 tools/run-stages.sh venv deps-system sanity-latest+emulator-tests sanity-2.16+awx-tests \
		units-latest+lifecycle integration-latest+integration-2.16+units-2.16+lint

# >>> demo targets (owned by the demo engineer: demo, demo-up, demo-down, demo-clean) >>>
.PHONY: demo demo-up demo-down demo-clean demo-venv

# Only what the demo needs (requirements/demo.txt and the emulator) in .venv; a full `make venv`
# adds the test and lint tools to the same .venv.
demo-venv: $(VENV)/.demo-stamp collection-link

$(VENV)/.demo-stamp: requirements/demo.txt $(EMULATOR_PROJECT)
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q -r requirements/demo.txt
	$(if $(EMULATOR_PROJECT),$(VPY) -m pip install -q -e tests/emulator)
	touch $@

# Provision three local demo hosts against the emulator (state in build/demo/); a second run asserts changed=0.
demo: demo-venv
	demo/run.sh

# Keep the demo emulator running and write build/demo/env.sh: `. build/demo/env.sh` and ansible-doc,
# ansible-playbook (report, revoke, your own playbooks) work against the demo from that shell.
demo-up: demo-venv
	demo/run.sh up

demo-down:
	demo/run.sh down

demo-clean:
	-demo/run.sh down >/dev/null
	rm -rf build/demo
# <<< demo targets <<<

# >>> benchmark targets (owned by the benchmark engineer: bench) >>>
.PHONY: bench

# Not a test and not part of `make test`: API calls and time against a private emulator with production
# rate limits (docs/BENCHMARK.md). Prints a table, writes build/bench.json; takes about 15 minutes
# (the 100-enrollment row alone over 3: it waits for the published limits; the role rows over 40 hosts about 4);
# tools/bench.py --help for options.
bench: venv
	$(VPY) tools/bench.py
# <<< benchmark targets <<<

# Keeps build/collections (the symlink others use); `make venv` recreates it anyway.
clean:
	rm -rf tests/output
	if [ -d build ]; then find build -mindepth 1 -maxdepth 1 ! -name collections -exec rm -rf {} +; fi

# ---------------------------------------------------------------------------------------------
# Mutation testing (optional, slow; not part of make test). mutmut mutates a copy of the collection laid out
# under ansible_collections/ (so the mutants keep their import names) and runs the unit tests against each
# mutant; `mutmut results` lists the survivors, `mutmut show NAME` shows one. Its own venv (build/venv-mutation).

MUTATION_VENV := build/venv-mutation
MUTATION_DIR := build/mutation
MUTATION_COLLECTION := ansible_collections/ksef/certificates
# Files or directories to mutate, and the unit tests that judge the mutants (paths in the repository).
MUTATION_PATHS ?= plugins/module_utils
MUTATION_TESTS ?= tests/unit/plugins/module_utils tests/unit/plugins/modules
# Slow tests that add nothing to mutation scores of module_utils (hypothesis fuzzing, the strace run).
MUTATION_PYTEST_ARGS ?= --ignore=$(MUTATION_COLLECTION)/tests/unit/plugins/modules/test_bad_input.py \
	--ignore=$(MUTATION_COLLECTION)/tests/unit/plugins/modules/test_file_modes_trace.py -p no:cacheprovider

$(MUTATION_VENV)/.stamp: requirements/demo.txt tests/unit/requirements.txt
	test -x $(MUTATION_VENV)/bin/python || $(PYTHON) -m venv $(MUTATION_VENV)
	$(MUTATION_VENV)/bin/python -m pip install -q mutmut==3.8.1 pytest==8.4.2 -r requirements/demo.txt \
		-r tests/unit/requirements.txt
	touch $@

.PHONY: mutation
mutation: $(MUTATION_VENV)/.stamp
	rm -rf $(MUTATION_DIR)
	mkdir -p $(MUTATION_DIR)/$(MUTATION_COLLECTION)
	cp -r plugins meta galaxy.yml $(MUTATION_DIR)/$(MUTATION_COLLECTION)/
	mkdir -p $(MUTATION_DIR)/$(MUTATION_COLLECTION)/tests
	cp -r tests/unit $(MUTATION_DIR)/$(MUTATION_COLLECTION)/tests/
	{ echo '[mutmut]'; \
	  echo 'source_paths ='; for p in $(MUTATION_PATHS); do echo "    $(MUTATION_COLLECTION)/$$p"; done; \
	  echo 'pytest_add_cli_args_test_selection ='; for p in $(MUTATION_TESTS); do echo "    $(MUTATION_COLLECTION)/$$p"; done; \
	  echo 'pytest_add_cli_args ='; for a in $(MUTATION_PYTEST_ARGS); do echo "    $$a"; done; \
	  echo 'also_copy ='; echo '    $(MUTATION_COLLECTION)/tests'; echo '    $(MUTATION_COLLECTION)/plugins'; \
	} > $(MUTATION_DIR)/setup.cfg
	cd $(MUTATION_DIR) && $(CURDIR)/$(MUTATION_VENV)/bin/mutmut run --max-children 2
	cd $(MUTATION_DIR) && $(CURDIR)/$(MUTATION_VENV)/bin/mutmut results

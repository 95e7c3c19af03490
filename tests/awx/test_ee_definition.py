# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks of the AWX/AAP material in docs/awx, offline:
- ansible-builder creates a build context from the example EE definition (with a real collection
  tarball built from this repository), and introspects the collection's dependencies;
- the credential type injects only KSEF_* variables that the connection doc fragment documents,
  and its file injectors and required inputs fit together.
Run: .venv/bin/python -m pytest tests/awx
"""
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
AWX_DIR = os.path.join(REPO, 'docs', 'awx')
VENV_BIN = os.path.dirname(sys.executable)


def tool(name):
    path = os.path.join(VENV_BIN, name)
    return path if os.path.exists(path) else shutil.which(name)


def load_yaml(path):
    with open(path, encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def documented_env_variables():
    """The E(KSEF_...) fallback variables named in the connection doc fragment."""
    with open(os.path.join(REPO, 'plugins', 'doc_fragments', 'connection.py'), encoding='utf-8') as handle:
        source = handle.read()
    documentation = re.search(r"DOCUMENTATION = r'''(.*?)'''", source, re.S).group(1)
    return set(re.findall(r'E\((KSEF_[A-Z0-9_]+)\)', documentation))


def collection_version():
    return load_yaml(os.path.join(REPO, 'galaxy.yml'))['version']


def test_credential_type_injects_only_documented_ksef_variables():
    credential_type = load_yaml(os.path.join(AWX_DIR, 'credential-type.yml'))
    injected = set(credential_type['injectors']['env'])
    documented = documented_env_variables()
    assert documented, 'the connection doc fragment names no KSEF_* variable'
    assert all(name.startswith('KSEF_') for name in injected)
    assert injected <= documented, 'not documented: %s' % sorted(injected - documented)
    # The signature login the role needs: certificate and key as files, and the context.
    assert {'KSEF_AUTH_CERTIFICATE_PATH', 'KSEF_AUTH_PRIVATE_KEY_PATH', 'KSEF_CONTEXT_ID'} <= injected


def test_credential_type_file_injectors_and_inputs_fit():
    credential_type = load_yaml(os.path.join(AWX_DIR, 'credential-type.yml'))
    fields = {field['id']: field for field in credential_type['inputs']['fields']}
    files = credential_type['injectors']['file']
    env = credential_type['injectors']['env']
    for template_name, template in files.items():
        label = template_name.split('.', 1)[1]
        assert label in fields, template_name
        assert template == '{{ %s }}' % label
        # Each file is used: some variable points to it.
        assert any('tower.filename.%s' % label in value for value in env.values()), label
    referenced = set(re.findall(r'{{\s*(\w+)', ' '.join(env.values()) + ' '.join(files.values())))
    assert referenced - {'tower'} <= set(fields)
    assert set(credential_type['inputs']['required']) <= set(fields)
    for field_id in ('auth_private_key', 'auth_pkcs12', 'auth_passphrase', 'auth_pkcs11_pin'):
        assert fields[field_id].get('secret') is True, field_id
    assert not any(name.startswith('ANSIBLE_') for name in env)


@pytest.fixture(scope='module')
def collection_tarball(tmp_path_factory):
    output = tmp_path_factory.mktemp('collection')
    result = subprocess.run([tool('ansible-galaxy'), 'collection', 'build', '--output-path', str(output), REPO],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    tarball = output / ('ksef-certificates-%s.tar.gz' % collection_version())
    assert tarball.exists()
    return tarball


def test_ansible_builder_creates_the_example_context(tmp_path, collection_tarball):
    definition = load_yaml(os.path.join(AWX_DIR, 'execution-environment.yml'))
    assert definition['version'] == 3
    # The example must name the tarball of the current collection version.
    tarball_name = collection_tarball.name
    assert [c['name'] for c in definition['dependencies']['galaxy']['collections']] == [tarball_name]

    shutil.copy(os.path.join(AWX_DIR, 'execution-environment.yml'), tmp_path)
    shutil.copy(collection_tarball, tmp_path)
    context = tmp_path / 'context'
    result = subprocess.run([tool('ansible-builder'), 'create', '-f', 'execution-environment.yml', '-c', str(context),
                             '--output-filename', 'Containerfile'],
                            cwd=str(tmp_path), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    containerfile = (context / 'Containerfile').read_text(encoding='utf-8')
    assert 'ansible-galaxy collection install' in containerfile
    assert 'quay.io/centos/centos:stream9' in containerfile
    assert (context / '_build' / 'collections' / tarball_name).exists()
    requirements = load_yaml(str(context / '_build' / 'requirements.yml'))
    assert requirements['collections'][0] == {'name': tarball_name, 'type': 'file'}


def test_ansible_builder_introspects_the_collection_dependencies():
    collections_dir = os.path.join(REPO, 'build', 'collections')
    if not os.path.exists(os.path.join(collections_dir, 'ansible_collections', 'ksef', 'certificates')):
        pytest.skip('build/collections/ansible_collections/ksef/certificates is missing: run `make venv`')
    result = subprocess.run([tool('ansible-builder'), 'introspect', '--sanitize', collections_dir],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    dependencies = yaml.safe_load(result.stdout)
    python = [line.split('#')[0].strip() for line in dependencies['python'] if 'ksef.certificates' in line]
    system = [line.split('#')[0].strip() for line in dependencies['system'] if 'ksef.certificates' in line]
    for requirement in ('requests', 'cryptography', 'lxml'):
        assert any(re.match(r'%s\b' % requirement, line) for line in python), python
    assert any(line.startswith('openssl ') for line in system), system

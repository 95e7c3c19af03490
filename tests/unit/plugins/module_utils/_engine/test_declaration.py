# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils._engine import declaration as _declaration
from ansible_collections.ksef.certificates.plugins.module_utils._engine.declaration import (
    PER_CERTIFICATE_OPTIONS,
    Declaration,
    load_local_material,
    merge_declarations,
    validate_declaration,
    validate_set,
)
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefInputError
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.certs import key_bytes, make_key


def options(**values):
    result = dict((key, None) for key in PER_CERTIFICATE_OPTIONS)
    result.update(name='erp-auth', type='authentication', state='present', private_key_path='/tmp/none/erp.key')
    result.update(values)
    return result


def test_every_option_is_an_explicit_field():
    decl = Declaration(dict((key, 'value of %s' % key) for key in PER_CERTIFICATE_OPTIONS))
    for key in PER_CERTIFICATE_OPTIONS:
        assert getattr(decl, key) == 'value of %s' % key
    assert 'setattr' not in open(_declaration.__file__).read()


def test_list_items_take_top_level_values_as_defaults():
    params = options(renew_before_days=45, certificates=[{'name': 'one-cert'}, {'name': 'two-cert', 'renew_before_days': 10}])
    first, second = merge_declarations(params)
    assert (first.name, first.renew_before_days, first.index) == ('one-cert', 45, 0)
    assert (second.name, second.renew_before_days, second.label) == ('two-cert', 10, 'two-cert/authentication (certificates[1])')
    single = merge_declarations(options())
    assert len(single) == 1 and single[0].index is None and single[0].label == 'erp-auth/authentication'


@pytest.mark.parametrize('values, message', [
    (dict(name=None), 'name is required'),
    (dict(name='erp-auth\n'), 'is not accepted by KSeF'),
    (dict(type='signing'), 'type must be one of authentication, offline'),
    (dict(csr_path='/a', csr_content='b', private_key_path=None), 'csr_path or csr_content, not both'),
    (dict(csr_path='/a'), 'private_key_path or a CSR'),
    (dict(private_key_path=None), 'set private_key_path'),
    (dict(pkcs12_path='/p', private_key_path=None, csr_path='/a'), 'pkcs12_path needs private_key_path'),
    (dict(pkcs12_path='/p'), 'pkcs12_path without pkcs12_passphrase would hold the private key unencrypted'),
    (dict(renew_before_days=-1), 'renew_before_days must not be negative'),
    (dict(wait_timeout=-1), 'wait_timeout must not be negative'),
    (dict(valid_from='tomorrow'), 'is not an ISO 8601 date-time'),
])
def test_bad_declarations_fail_before_any_call(values, message):
    with pytest.raises(KsefInputError, match=message):
        validate_declaration(Declaration(options(**values)))


def test_state_path_defaults_next_to_the_key():
    decl = Declaration(options())
    validate_declaration(decl)
    assert decl.state_path == '/tmp/none/erp.key.ksef-pending.json'
    assert decl.next_key_path == '/tmp/none/erp.key.next'
    assert decl.wait_seconds == 300
    assert decl.local_files() == ['/tmp/none/erp.key', '/tmp/none/erp.key.next', '/tmp/none/erp.key.ksef-pending.json']


def test_duplicates_and_shared_paths_are_refused():
    with pytest.raises(KsefInputError, match='declared twice'):
        validate_set([Declaration(options(private_key_path='/a'), 0), Declaration(options(private_key_path='/b'), 1)])
    with pytest.raises(KsefInputError, match='used by two certificates'):
        validate_set([Declaration(options(), 0), Declaration(options(name='other-cert'), 1)])


def test_local_material_is_read(tmp_path):
    key = make_key('ec')
    (tmp_path / 'erp.key').write_bytes(key_bytes(key))
    decl = Declaration(options(private_key_path=str(tmp_path / 'erp.key'), certificate_path=str(tmp_path / 'none.pem')))
    load_local_material(decl)
    assert decl.key is not None and decl.local_certificate is None and not decl.uses_csr
    assert decl.declared_public_key_sha256 is not None


def test_missing_key_directory_is_an_input_error(tmp_path):
    with pytest.raises(KsefInputError, match='does not exist'):
        load_local_material(Declaration(options(private_key_path=str(tmp_path / 'no' / 'erp.key'))))


def test_file_paths_are_taken_literally_except_a_leading_tilde(monkeypatch):
    monkeypatch.setenv('HOME', '/home/tester')
    hostile = '/srv/d\'q"x $(touch M1) `touch M2` $HOME'
    decl = Declaration(options(private_key_path=hostile + '/k.key', certificate_path=hostile + '/k.crt',
                               pkcs12_path=hostile + '/k.p12', state_path=hostile + '/k.json'))
    assert (decl.private_key_path, decl.certificate_path, decl.pkcs12_path, decl.state_path) == (
        hostile + '/k.key', hostile + '/k.crt', hostile + '/k.p12', hostile + '/k.json')
    assert Declaration(options(private_key_path='~/k.key')).private_key_path == '/home/tester/k.key'

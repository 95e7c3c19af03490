# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""key_backend pkcs11 in the declaration and installer, against a real SoftHSM2 token."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from cryptography import x509

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto, _der
from ansible_collections.ksef.certificates.plugins.module_utils._engine.decide import Decision
from ansible_collections.ksef.certificates.plugins.module_utils._engine.plan import Plan
from ansible_collections.ksef.certificates.plugins.module_utils._engine.declaration import (
    Declaration,
    load_local_material,
    validate_declaration,
)
from ansible_collections.ksef.certificates.plugins.module_utils._engine.install import Installer
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils import certs
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.softhsm import (  # pylint: disable=unused-import
    USER_PIN,
    softhsm_fixture,  # noqa: F401 - registers the fixture 'softhsm'
)
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils._engine.test_install import FileModule

_pkcs11 = pytest.importorskip('ansible_collections.ksef.certificates.plugins.module_utils._pkcs11')
_pkcs11_keystore = pytest.importorskip('ansible_collections.ksef.certificates.plugins.module_utils._pkcs11_keystore')


@pytest.fixture
def token_declaration(softhsm, tmp_path):  # noqa: F811 - pytest fixture injection
    softhsm.init_token('keys')
    decl = Declaration(dict(name='erp-auth', type='authentication', state='present', key_backend='pkcs11',
                            pkcs11_module=softhsm.library, pkcs11_token_label='keys', pkcs11_pin=USER_PIN,
                            certificate_path=str(tmp_path / 'erp.pem'), private_key_type='ec', backup=False))
    validate_declaration(decl)
    yield decl
    for token in _pkcs11_keystore._OPEN_TOKENS.values():  # pylint: disable=protected-access
        token.close()
    _pkcs11_keystore._OPEN_TOKENS.clear()  # pylint: disable=protected-access


def issue(decl, key):
    """A certificate for a token key (self-signed through the token stands in for KSeF's)."""
    return x509.load_der_x509_certificate(_der.sign_with_swapped_key(
        certs.make_seal_certificate, key.public_key, decl.keystore.token.signer(key)))


def test_rotation_installs_first_and_deletes_the_old_key_last(token_declaration, tmp_path):
    decl = token_declaration
    assert decl.pkcs11_key_label == 'erp-auth'  # the declaration's name by default
    assert decl.state_path == str(tmp_path / 'erp.pem') + '.ksef-pending.json'
    load_local_material(decl)
    assert decl.key is None and decl.token_key is None
    installer = Installer(FileModule())

    plan = Plan(decl, Decision(decl, key_plan='generate_in_place'))
    first, first_ref = installer.generate_key(plan)
    assert first_ref == decl.keystore.ref(first)
    first_certificate = issue(decl, first)
    installer.install(plan, first_certificate)
    assert _crypto.read_certificate_file(decl.certificate_path).serial_number == first_certificate.serial_number
    load_local_material(decl)  # a later run
    assert _crypto.public_key_fingerprint(decl.key) == _crypto.public_key_fingerprint(first.public_key)
    assert not installer.local_files.need_install(decl, first_certificate)

    # Renewal: a new key in the token; until its certificate is installed the old key is the one in use.
    plan = Plan(decl, Decision(decl, key_plan='generate_next'))
    second, _second_ref = installer.generate_key(plan)
    load_local_material(decl)  # a crash here: the rerun still sees the old key as current
    assert _crypto.public_key_fingerprint(decl.key) == _crypto.public_key_fingerprint(first.public_key)
    second_certificate = issue(decl, second)
    installer.install(plan, second_certificate)
    keys = decl.keystore.token.private_keys('erp-auth')
    assert [_crypto.public_key_fingerprint(k.public_key) for k in keys] == [
        _crypto.public_key_fingerprint(second.public_key)]
    assert _crypto.read_certificate_file(decl.certificate_path).serial_number == second_certificate.serial_number


def test_a_key_made_for_an_enrollment_that_never_happened_is_discarded_but_never_the_key_in_use(token_declaration):
    decl = token_declaration
    load_local_material(decl)
    installer = Installer(FileModule())
    plan = Plan(decl, Decision(decl, key_plan='generate_in_place'))
    current, current_ref = installer.generate_key(plan)
    installer.install(plan, issue(decl, current))
    load_local_material(decl)
    plan = Plan(decl, Decision(decl, key_plan='generate_next'))
    _unsent, unsent_ref = installer.generate_key(plan)
    assert len(decl.keystore.token.private_keys('erp-auth')) == 2
    installer.discard_next_key(decl, {'key_path': unsent_ref})
    installer.discard_next_key(decl, {'key_path': current_ref})
    keys = decl.keystore.token.private_keys('erp-auth')
    assert [decl.keystore.ref(k) for k in keys] == [current_ref]


def test_the_token_key_of_a_wrong_pin_fails_before_anything(token_declaration):
    decl = token_declaration
    decl.pkcs11_pin = '000000'
    with pytest.raises(_pkcs11.Pkcs11Error, match=r"rejected the PIN \(pkcs11_pin\): CKR_PIN_INCORRECT"):
        load_local_material(decl)

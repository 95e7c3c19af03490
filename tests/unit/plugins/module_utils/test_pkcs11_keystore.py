# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_pkcs11_keystore against a real SoftHSM2 token: the key pairs of a key_backend pkcs11 declaration."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from cryptography import x509

from ansible_collections.ksef.certificates.plugins.module_utils import _der
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils import certs
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.softhsm import (  # pylint: disable=unused-import
    USER_PIN,
    softhsm_fixture,  # noqa: F401 - registers the fixture 'softhsm'
    spki,
    token_fixture,  # noqa: F401 - registers the fixture 'token'
)

_pkcs11 = pytest.importorskip('ansible_collections.ksef.certificates.plugins.module_utils._pkcs11')
_pkcs11_keystore = pytest.importorskip('ansible_collections.ksef.certificates.plugins.module_utils._pkcs11_keystore')


def test_key_store_rotation_keeps_the_old_key_until_the_new_certificate_is_installed(token):
    store = _pkcs11_keystore.TokenKeyStore(token, 'ksef-auth')
    assert store.current() is None
    first = store.generate('ec')
    first_certificate = certs.make_seal_certificate(certs.make_key('ec', slot=5))  # not this key's: refused
    with pytest.raises(_pkcs11.Pkcs11Error, match='holds no key labelled .ksef-auth. for certificate'):
        store.attach(first_certificate)
    first_certificate = x509.load_der_x509_certificate(_der.sign_with_swapped_key(
        certs.make_seal_certificate, first.public_key, token.signer(first)))
    store.attach(first_certificate)
    store.attach(first_certificate)  # once only
    assert len(token.certificates_of(first)) == 1
    assert store.has_certificate(first_certificate)
    assert spki(store.current().public_key) == spki(first.public_key)

    # Renewal: a second key pair with the label; the first stays the current one until the new certificate is in.
    second = store.generate('ec')
    assert spki(store.current().public_key) == spki(first.public_key)
    assert spki(store.current(first_certificate).public_key) == spki(first.public_key)
    second_certificate = x509.load_der_x509_certificate(_der.sign_with_swapped_key(
        certs.make_seal_certificate, second.public_key, token.signer(second)))
    store.attach(second_certificate)
    assert len(token.private_keys('ksef-auth')) == 2
    store.remove_others(second_certificate)
    assert [spki(k.public_key) for k in token.private_keys('ksef-auth')] == [spki(second.public_key)]
    assert spki(store.current().public_key) == spki(second.public_key)

    # A key made for an enrollment that never happened is discarded by its reference; the key in use stays.
    third = store.generate('rsa')
    reference = store.ref(third)
    assert reference.startswith('pkcs11:unit/ksef-auth:') and len(reference) > len('pkcs11:unit/ksef-auth:') + 30
    store.discard(reference)
    assert [spki(k.public_key) for k in token.private_keys('ksef-auth')] == [spki(second.public_key)]


def test_open_token_is_one_login_per_token_and_a_second_session_shares_it(softhsm):  # noqa: F811
    softhsm.init_token('shared')
    first = _pkcs11_keystore.open_token(softhsm.library, 'shared', USER_PIN)
    try:
        assert _pkcs11_keystore.open_token(softhsm.library, 'shared', USER_PIN) is first
        # The login signer opens its own session on the same token: already logged in is fine.
        with _pkcs11.Pkcs11Token(softhsm.library, 'shared', USER_PIN, 'auth_pkcs11_') as second:
            key = second.generate_key_pair('k', 'ec')
        # Closing the second session did not log the first one out.
        assert len(first.sign(first.private_key('k'), b'data')) == 64
        assert key.key_type == 'ec'
    finally:
        _pkcs11_keystore._OPEN_TOKENS.clear()  # pylint: disable=protected-access
        first.close()

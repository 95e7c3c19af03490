# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the next login reads its certificate: LoginCertificate.reaches_next_login for each way to log in."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import types

from ansible_collections.ksef.certificates.plugins.module_utils._login import LoginCertificate


def decl(tmp_path, **extra):
    fields = dict(label='erp-login (authentication)', key_backend='file', certificate_path=str(tmp_path / 'c.pem'),
                  private_key_path=str(tmp_path / 'k.pem'), pkcs12_path=None, pkcs11_token_label=None,
                  pkcs11_key_label=None)
    fields.update(extra)
    return types.SimpleNamespace(**fields)


def test_files(tmp_path):
    same = LoginCertificate.from_params({'auth_certificate_path': str(tmp_path / 'c.pem'),
                                         'auth_private_key_path': str(tmp_path / 'k.pem')}, '01')
    other = LoginCertificate.from_params({'auth_certificate_path': str(tmp_path / 'awx'),
                                          'auth_private_key_path': str(tmp_path / 'k.pem')}, '01')
    content = LoginCertificate.from_params({'auth_certificate_content': 'PEM', 'auth_private_key_content': 'PEM'}, '01')
    assert same.reaches_next_login(decl(tmp_path))
    assert not other.reaches_next_login(decl(tmp_path))
    assert not content.reaches_next_login(decl(tmp_path))
    assert 'inline content' in content.why_kept(decl(tmp_path))


def test_pkcs12_bundle(tmp_path):
    login = LoginCertificate.from_params({'auth_certificate_path': str(tmp_path / 'b.p12')}, '01')
    assert login.reaches_next_login(decl(tmp_path, pkcs12_path=str(tmp_path / 'b.p12')))
    assert not login.reaches_next_login(decl(tmp_path))


def test_pkcs11_token(tmp_path):
    params = {'auth_pkcs11_module': '/usr/lib/softhsm/libsofthsm2.so', 'auth_pkcs11_token_label': 'keys',
              'auth_pkcs11_key_label': 'erp-login', 'auth_certificate_path': str(tmp_path / 'c.pem')}
    login = LoginCertificate.from_params(params, '01')
    in_token = decl(tmp_path, key_backend='pkcs11', pkcs11_token_label='keys', pkcs11_key_label='erp-login',
                    private_key_path=None)
    assert login.reaches_next_login(in_token)
    assert not login.reaches_next_login(decl(tmp_path))
    assert not login.reaches_next_login(decl(tmp_path, key_backend='pkcs11', pkcs11_token_label='other',
                                             pkcs11_key_label='erp-login', private_key_path=None))
    assert 'key erp-login of token keys' in login.why_kept(decl(tmp_path))

# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filter of the provision playbook's login credential update: login_credential_inputs (documented in the .yml file)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError

# The signer inputs of docs/awx/credential-type.yml that the renewed PEM pair replaces. A PKCS#12 bundle would win
# over the PEM fields (see the injectors), and the new key is not encrypted, so those two are emptied.
CLEARED_INPUTS = ('auth_pkcs12', 'auth_passphrase')


def login_credential_inputs(existing, certificate_pem, private_key_pem):
    """The credential's inputs with the new certificate and key: every other input as it is.

    existing: the credential's `inputs` as the AWX API returns them (secret values read `$encrypted$`, which AWX
    keeps as stored when they are sent back), so the API URL, its CA, the environment, the context and the PKCS#11
    fields survive the update.
    """
    if not isinstance(existing, dict):
        raise AnsibleFilterError('login_credential_inputs expects the inputs of the AWX credential (a dict), got %s'
                                 % type(existing).__name__)
    for what, value in (('certificate', certificate_pem), ('private key', private_key_pem)):
        if not isinstance(value, str) or '-----BEGIN ' not in value:
            raise AnsibleFilterError('login_credential_inputs: the new %s must be PEM text' % what)
    inputs = dict(existing)
    for name in CLEARED_INPUTS:
        if name in inputs:
            inputs[name] = ''
    inputs['auth_certificate'] = certificate_pem
    inputs['auth_private_key'] = private_key_pem
    return inputs


class FilterModule:
    def filters(self):
        return {'login_credential_inputs': login_credential_inputs}

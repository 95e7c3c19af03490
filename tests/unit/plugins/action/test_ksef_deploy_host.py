# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The action plugin of ksef_deploy_host: the role's declarations checked on the controller, one short line each."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible.errors import AnsibleActionFail

from ansible_collections.ksef.certificates.plugins.action.ksef_deploy_host import prepare_args

# The role's defaults (roles/ksef_deploy/defaults/main.yml) as the prepare task hands them over.
DEFAULTS = {
    'ksef_deploy_key_location': 'host', 'ksef_deploy_key_type': None, 'ksef_deploy_controller_key_dir': '',
    'ksef_deploy_key_dir': '/etc/ksef/private', 'ksef_deploy_certificate_dir': '/etc/ksef/certs', 'ksef_deploy_owner': '',
    'ksef_deploy_group': '', 'ksef_deploy_key_file_mode': '0600', 'ksef_deploy_certificate_file_mode': '0644',
    'ksef_deploy_pkcs12_file_mode': '0600', 'ksef_deploy_key_dir_mode': '0700', 'ksef_deploy_certificate_dir_mode': '0755',
    'ksef_deploy_formats': ['pem'], 'ksef_deploy_renew_before_days': None, 'ksef_deploy_revoke_superseded': None,
}


def settings(certificates):
    return dict(DEFAULTS, ksef_deploy_certificates=certificates)


def test_prepare_resolves_the_declarations_of_the_right_types():
    module_args = {}
    declared, host_items = prepare_args(module_args, settings([{'type': 'offline', 'renew_before_days': '40'}]), 'app1')
    assert [item['renew_before_days'] for item in host_items] == [40]
    assert module_args['certificates'][0]['renew_before_days'] == 40 and declared[0]['pkcs12_passphrase'] == ''


@pytest.mark.parametrize('certificates, message', [
    ('a string', 'ksef_deploy_certificates on app1 must be a list of certificate entries (dicts with name, type, ...), not a string'),
    ([{'type': 'bogus'}, {'type': ['offline'], 'pkcs12_passphrase': ['secret words']}],
     'Certificate entry 2 of ksef_deploy_certificates on app1: type must be a string (authentication or offline), not a list; '
     'Certificate entry 2 of ksef_deploy_certificates on app1: pkcs12_passphrase must be a string, not a list; '
     'Certificate declaration "app1-bogus" (bogus) on app1: type must be authentication or offline, not \'bogus\''),
])
def test_prepare_fails_with_one_short_line_per_wrong_type_and_broken_rule(certificates, message):
    with pytest.raises(AnsibleActionFail) as raised:
        prepare_args({}, settings(certificates), 'app1')
    assert raised.value.message == message

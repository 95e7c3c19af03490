# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters of the ksef_deploy role (documented in the ksef_deploy_*.yml files); the logic is plugin_utils/_deploy.py
plugin_utils/_deploy_account.py, plugin_utils/_deploy_proof.py and plugin_utils/_deploy_waves.py."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools

from ansible.errors import AnsibleFilterError

from ansible_collections.ksef.certificates.plugins.plugin_utils import _deploy, _deploy_account, _deploy_proof, _deploy_waves


def _filter(function, name=None):
    """Turn bad input into an AnsibleFilterError that names the filter (and never dumps the input)."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except _deploy.DeclarationError as exc:
            raise AnsibleFilterError(str(exc))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise AnsibleFilterError('ksef.certificates.ksef_deploy_%s: unexpected input (%s: %s)'
                                     % (name or function.__name__, type(exc).__name__, exc))
    return wrapper


class FilterModule:
    def filters(self):
        return {
            'ksef_deploy_id': _filter(_deploy.deploy_id, 'id'),
            'ksef_deploy_declarations': _filter(_deploy.declarations),
            'ksef_deploy_problems': _filter(_deploy.problems),
            'ksef_deploy_batch_problems': _filter(_deploy.batch_problems),
            'ksef_deploy_directories': _filter(_deploy.directories),
            'ksef_deploy_plan': _filter(_deploy.plan),
            'ksef_deploy_requests': _filter(_deploy.requests),
            'ksef_deploy_installs': _filter(_deploy.installs),
            'ksef_deploy_shared_requests': _filter(_deploy.shared_requests),
            'ksef_deploy_result': _filter(_deploy.result),
            'ksef_deploy_remove_selection': _filter(_deploy.remove_selection),
            'ksef_deploy_batch': _filter(_deploy_account.batch),
            'ksef_deploy_account': _filter(_deploy_account.account),
            'ksef_deploy_summary': _filter(_deploy_account.summary),
            'ksef_deploy_batch_values': _filter(_deploy_account.batch_values),
            'ksef_deploy_proof_requests': _filter(_deploy_proof.proof_requests),
            'ksef_deploy_host_signing': _filter(_deploy_proof.host_signing),
            'ksef_deploy_signed_proofs': _filter(_deploy_proof.signed_proofs),
            'ksef_deploy_revocations': _filter(_deploy_proof.revocations),
            'ksef_deploy_next_wave': _filter(_deploy_waves.next_wave, 'next_wave'),
            'ksef_deploy_waves_merged': _filter(_deploy_waves.merged, 'waves_merged'),
            'ksef_deploy_waves_predicted': _filter(_deploy_waves.predict, 'waves_predicted'),
        }

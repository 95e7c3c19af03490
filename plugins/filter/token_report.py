# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filter of the report playbook's token section: token_report (documented in token_report.yml)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.ksef.certificates.plugins.plugin_utils import _token_report


def token_report(info, sunset_date=_token_report.DEFAULT_SUNSET_DATE, threshold_days=30):
    if not isinstance(info, dict) or 'tokens' not in info:
        raise AnsibleFilterError('token_report expects the registered result of ksef_token_info')
    try:
        return _token_report.build_token_report(info, sunset_date, threshold_days)
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError('token_report: unexpected input (sunset_date must be YYYY-MM-DD): %s' % exc)


class FilterModule:
    def filters(self):
        return {'token_report': token_report}

# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The filter plugin is a thin wrapper of plugin_utils/_report.py; check its wiring and errors."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.ksef.certificates.plugins.filter.report import FilterModule


def test_filters_build_and_render_a_report():
    filters = FilterModule().filters()
    info = {'certificates': [{'serial_number': '01', 'name': 'erp-login', 'type': 'authentication', 'status': 'active',
                              'valid_from': '2026-01-01T00:00:00Z', 'valid_to': '2099-01-01T00:00:00Z'}]}
    report = filters['certificate_report'](info, [], 30, subject='1234563218')
    assert report['certificates'][0]['state'] == 'current'
    assert 'ksef_certificate_expiry_timestamp_seconds{subject="1234563218",name="erp-login"' in filters['prometheus_text'](report)


def test_filters_reject_wrong_input():
    filters = FilterModule().filters()
    with pytest.raises(AnsibleFilterError, match='ksef_certificate_info'):
        filters['certificate_report']({'changed': False})
    with pytest.raises(AnsibleFilterError, match='unexpected input'):
        filters['certificate_report']({'certificates': [{'name': 'x'}]})
    with pytest.raises(AnsibleFilterError, match='certificate_report'):
        filters['prometheus_text']([])

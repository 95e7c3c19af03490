# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters of the report playbook: certificate_report and prometheus_text (documented in the .yml files)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.ksef.certificates.plugins.plugin_utils import _report


def certificate_report(info, declared=None, threshold_days=30, subject=None):
    if not isinstance(info, dict) or 'certificates' not in info:
        raise AnsibleFilterError('certificate_report expects the registered result of ksef_certificate_info')
    try:
        return _report.build_report(info, declared or [], threshold_days, subject=subject)
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError('certificate_report: unexpected input: %s' % exc)


def prometheus_text(report):
    if not isinstance(report, dict) or 'certificates' not in report:
        raise AnsibleFilterError('prometheus_text expects the output of ksef.certificates.certificate_report')
    return _report.prometheus_text(report)


class FilterModule:
    def filters(self):
        return {
            'certificate_report': certificate_report,
            'prometheus_text': prometheus_text,
        }

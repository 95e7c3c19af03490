# -*- coding: utf-8 -*-
# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the report's KSeF token section (_token_report) and its filter; metrics parsed with
prometheus_client's own parser."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

import pytest
from ansible.errors import AnsibleFilterError
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.ksef.certificates.plugins.filter import token_report as token_filter
from ansible_collections.ksef.certificates.plugins.plugin_utils import _report, _token_report

NOW = datetime.datetime(2026, 12, 6, 23, 30, tzinfo=datetime.timezone.utc)


def token(reference, description, status='active', last_use='2026-12-05T08:00:00+00:00', days=1):
    return {'reference_number': reference, 'description': description, 'status': status, 'permissions': ['invoice_read'],
            'author_identifier': '1234563218', 'date_created': '2026-01-10T12:00:00+00:00', 'last_use_date': last_use,
            'days_since_last_use': days if last_use else None}


INFO = {'tokens': [
    token('R1', 'erp "main" link'),
    token('R2', 'never used', status='pending', last_use=None),
    token('R3', 'gone', status='revoked'),
    token('R4', 'failed one', status='failed', last_use=None),
]}


def test_live_tokens_are_listed_with_the_days_to_the_sunset_and_alerted_within_the_threshold():
    report = _token_report.build_token_report(INFO, '2026-12-31', 30, now=NOW)
    assert report['sunset_date'] == '2026-12-31' and report['days_to_sunset'] == 25
    assert [row['reference_number'] for row in report['tokens']] == ['R1', 'R2']
    assert report['tokens'][0]['last_use_timestamp'] == int(datetime.datetime(2026, 12, 5, 8, tzinfo=datetime.timezone.utc).timestamp())
    assert report['tokens'][1]['last_use_timestamp'] is None
    assert all('still Active 25 days before' in row['alert'] for row in report['tokens'])
    assert [row['reference_number'] for row in report['alerts']] == ['R1', 'R2']


def test_the_sunset_date_is_a_setting_and_outside_the_threshold_nothing_alerts():
    report = _token_report.build_token_report(INFO, '2027-12-31', 30, now=NOW)
    assert report['days_to_sunset'] == 390 and report['alerts'] == []


def test_after_the_sunset_date_a_live_token_is_alerted_to_be_revoked():
    report = _token_report.build_token_report(INFO, '2026-12-01', 0, now=NOW)
    assert report['days_to_sunset'] == -5
    assert report['alerts'][0]['alert'].startswith('KSeF stopped accepting tokens after 2026-12-01')


def test_metrics_parse_with_prometheus_client_and_carry_each_live_token():
    tokens = _token_report.build_token_report(INFO, '2026-12-31', 30, now=NOW)
    text = _token_report.token_prometheus_text(tokens, subject='1234563218')
    samples = dict(((s.name, s.labels.get('reference_number')), (s.value, s.labels))
                   for family in text_string_to_metric_families(text) for s in family.samples)
    assert samples[('ksef_token_sunset_days_remaining', None)][0] == 25
    assert samples[('ksef_tokens_live', None)][0] == 2
    assert samples[('ksef_token_active', 'R1')][0] == 1 and samples[('ksef_token_active', 'R2')][0] == 0
    assert samples[('ksef_token_active', 'R1')][1]['description'] == 'erp "main" link'
    assert ('ksef_token_last_use_timestamp_seconds', 'R2') not in samples
    assert samples[('ksef_token_alert', 'R1')][0] == 1
    assert text.endswith('\n')


def test_the_certificate_report_carries_the_token_metrics_after_its_own():
    report = _report.build_report({'certificates': []}, now=NOW, subject='1234563218')
    plain = _report.prometheus_text(report)
    report['tokens'] = _token_report.build_token_report(INFO, '2026-12-31', 30, now=NOW)
    text = _report.prometheus_text(report)
    assert text.startswith(plain)
    names = set(family.name for family in text_string_to_metric_families(text))
    assert {'ksef_report_alerts', 'ksef_token_sunset_days_remaining', 'ksef_token_alert'} <= names


def test_the_filter_checks_its_input():
    assert token_filter.token_report({'tokens': []})['tokens'] == []
    with pytest.raises(AnsibleFilterError, match='ksef_token_info'):
        token_filter.token_report({'certificates': []})
    with pytest.raises(AnsibleFilterError, match='YYYY-MM-DD'):
        token_filter.token_report({'tokens': []}, sunset_date='31.12.2026')
    assert token_filter.FilterModule().filters() == {'token_report': token_filter.token_report}

# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The report of playbooks/report.yml: states, alerts and the Prometheus text format, parsed with
prometheus_client's own parser."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.ksef.certificates.plugins.module_utils import _rules
from ansible_collections.ksef.certificates.plugins.plugin_utils import _report

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc)


def at(days, hours=0):
    """A KSeF date-time `days` (and hours) from NOW, in KSeF's style (7 fractional digits, offset)."""
    value = NOW + datetime.timedelta(days=days, hours=hours)
    return value.strftime('%Y-%m-%dT%H:%M:%S.1234567+00:00')


def cert(serial, name, days, status='active', cert_type='authentication'):
    return {'serial_number': serial, 'name': name, 'type': cert_type, 'status': status,
            'valid_from': at(days - 365), 'valid_to': at(days), 'last_use_date': None}


def declared(name, cert_type='authentication', host='web1', renew_before_days=30):
    return {'id': '%s|%s' % (name, cert_type), 'name': name, 'type': cert_type, 'host': host,
            'renew_before_days': renew_before_days}


LIMITS = {'can_request': True, 'enrollment': {'remaining': 297, 'limit': 300},
          'certificate': {'remaining': 96, 'limit': 100}}


def rows_by_serial(report):
    return dict((row['serial_number'], row) for row in report['certificates'])


def test_states_of_every_kind():
    info = {'certificates': [
        cert('01', 'erp-login', 300),
        cert('02', 'offline-qr', 20, cert_type='offline'),          # superseded by 03, still active
        cert('03', 'offline-qr', 700, cert_type='offline'),
        cert('04', 'revoked-one', 200, status='revoked'),
        cert('05', 'blocking-one', 200, status='blocked'),
        cert('06', 'old-one', -3, status='expired'),
        cert('07', 'stale-active', -1),                              # KSeF still says active, the date passed
    ], 'limits': LIMITS}
    report = _report.build_report(info, [declared('offline-qr', 'offline')], 30, now=NOW, subject='1234563218')
    rows = rows_by_serial(report)
    assert [rows[s]['state'] for s in ('01', '02', '03', '04', '05', '06', '07')] == \
        ['current', 'superseded', 'current', 'revoked', 'blocked', 'expired', 'expired']
    # A superseded Offline certificate is listed as such, with its successor, and never alerted on.
    assert rows['02']['alert'] == ''
    assert '03' in rows['02']['note'] and 'QR' in rows['02']['note']
    assert rows['05']['note'] == 'KSeF is completing its revocation'
    assert report['alerts'] == []
    assert rows['03']['declared_by'] == ['web1'] and rows['01']['declared_by'] == []
    assert rows['01']['days_remaining'] == 300
    assert report['generated_at'] == '2026-12-01T12:00:00+00:00'


def test_undeclared_certificate_alerts_within_the_threshold_only():
    info = {'certificates': [cert('0A', 'manual-one', 29), cert('0B', 'manual-two', 30)]}
    info['certificates'][0]['valid_to'] = at(29, hours=23)
    info['certificates'][1]['valid_to'] = at(30, hours=1)
    report = _report.build_report(info, [], 30, now=NOW)
    rows = rows_by_serial(report)
    assert rows['0A']['alert'] == 'expires in 29 days and no inventory host declares it'
    assert rows['0B']['alert'] == ''
    assert [row['serial_number'] for row in report['alerts']] == ['0A']


@pytest.mark.parametrize('days, hours', [(10, 0), (29, 23), (30, 0), (30, 1), (31, 0), (45, 0)])
def test_declared_certificate_alerts_exactly_when_the_renewal_rule_says_due(days, hours):
    """The report and ksef_certificate share _rules.renewal_due: an alert for a declared certificate means
    provisioning should have renewed it."""
    info = {'certificates': [cert('0C', 'erp-login', days)]}
    info['certificates'][0]['valid_to'] = at(days, hours)
    report = _report.build_report(info, [declared('erp-login', renew_before_days=30)], 60, now=NOW)
    due = _rules.renewal_due(info['certificates'][0]['valid_to'], NOW, 30)
    assert bool(report['alerts']) is due
    if due:
        assert 'inside its 30-day renewal window' in report['alerts'][0]['alert']


def test_widest_renewal_window_of_the_declaring_hosts_wins():
    info = {'certificates': [cert('0D', 'shared-cert', 40)]}
    decls = [declared('shared-cert', host='a', renew_before_days=20), declared('shared-cert', host='b', renew_before_days=45)]
    report = _report.build_report(info, decls, 10, now=NOW)
    assert report['certificates'][0]['declared_by'] == ['a', 'b']
    assert 'inside its 45-day renewal window' in report['alerts'][0]['alert']


def test_expiring_superseded_authentication_certificate_does_not_alert():
    info = {'certificates': [cert('0E', 'erp-login', 5), cert('0F', 'erp-login', 700)]}
    report = _report.build_report(info, [], 30, now=NOW)
    rows = rows_by_serial(report)
    assert rows['0E']['state'] == 'superseded' and 'still active until it is revoked' in rows['0E']['note']
    assert report['alerts'] == []


def families(text):
    return dict((family.name, family) for family in text_string_to_metric_families(text))


def test_prometheus_text_parses_and_carries_every_certificate_and_the_quota():
    info = {'certificates': [
        cert('01', 'erp "main" \\ login', 300),
        cert('02', 'offline-qr', 20, cert_type='offline'),
        cert('03', 'offline-qr', 700, cert_type='offline'),
        cert('05', 'blocking-one', 200, status='blocked'),
        cert('0A', 'manual-one', 3),
    ], 'limits': LIMITS}
    report = _report.build_report(info, [], 30, now=NOW, subject='1234563218')
    text = _report.prometheus_text(report)
    assert text.endswith('\n')
    parsed = families(text)
    for family in parsed.values():
        assert family.type == 'gauge', family.name
        assert family.documentation

    expiry = dict((s.labels['serial_number'], s) for s in parsed['ksef_certificate_expiry_timestamp_seconds'].samples)
    assert set(expiry) == {'01', '02', '03', '05', '0A'}
    assert expiry['01'].labels == {'subject': '1234563218', 'name': 'erp "main" \\ login', 'type': 'authentication',
                                   'serial_number': '01'}
    assert expiry['02'].labels['type'] == 'offline'
    assert expiry['03'].value == _rules.parse_datetime(at(700)).timestamp() // 1

    def ones(family, label):
        return dict((s.labels['serial_number'], s.labels[label]) for s in parsed[family].samples if s.value == 1)

    # exactly one status and one state per certificate
    for family, label in (('ksef_certificate_status', 'status'), ('ksef_certificate_state', 'state')):
        per_serial = {}
        assert all(sample.labels.get(label) for sample in parsed[family].samples), family
        for sample in parsed[family].samples:
            per_serial.setdefault(sample.labels['serial_number'], []).append(sample.value)
        assert all(sorted(values)[-1] == 1 and sum(values) == 1 for values in per_serial.values()), family
    assert ones('ksef_certificate_status', 'status') == {'01': 'active', '02': 'active', '03': 'active',
                                                         '05': 'blocked', '0A': 'active'}
    assert ones('ksef_certificate_state', 'state') == {'01': 'current', '02': 'superseded', '03': 'current',
                                                       '05': 'blocked', '0A': 'current'}
    alerts = dict((s.labels['serial_number'], s.value) for s in parsed['ksef_certificate_alert'].samples)
    assert alerts == {'01': 0, '02': 0, '03': 0, '05': 0, '0A': 1}

    def single(name):
        samples = parsed[name].samples
        assert len(samples) == 1 and samples[0].labels == {'subject': '1234563218'}
        return samples[0].value

    assert single('ksef_enrollment_quota_remaining') == 297
    assert single('ksef_enrollment_quota_limit') == 300
    assert single('ksef_certificate_quota_remaining') == 96
    assert single('ksef_certificate_quota_limit') == 100
    assert single('ksef_enrollment_allowed') == 1
    assert single('ksef_report_alerts') == 1
    assert single('ksef_report_generated_timestamp_seconds') == NOW.timestamp()


def test_prometheus_text_without_limits_or_subject():
    report = _report.build_report({'certificates': []}, [], 30, now=NOW)
    parsed = families(_report.prometheus_text(report))
    assert 'ksef_certificate_quota_remaining' not in parsed
    assert parsed['ksef_certificate_expiry_timestamp_seconds'].samples == []
    assert parsed['ksef_report_alerts'].samples[0].labels == {}
    assert parsed['ksef_report_alerts'].samples[0].value == 0


def test_markdown_report_escapes_html_and_cell_breakers():
    """issue 17, info: a certificate name from KSeF with HTML must not reach the Markdown page raw."""
    import os
    import jinja2
    template_path = os.path.join(os.path.dirname(_report.__file__), '..', '..', 'playbooks', 'templates', 'ksef_report.md.j2')
    with open(template_path) as handle:
        template = jinja2.Environment(trim_blocks=True).from_string(handle.read())
    hostile = '<img src=x onerror=alert(1)>|`x`\n# heading'
    row = dict(name=hostile, type='Offline', serial_number='01<b>', state='current', valid_to='2030-01-01',
               days_remaining=10, declared_by=['<i>app1</i>'], note='<script>x</script>', alert='renew <now>')
    page = template.render(ksef_report=dict(generated_at='now', threshold_days=30, limits=None, alerts=[row],
                                            certificates=[row]))
    assert '<' not in page.replace('<!--', '') and '&lt;img src=x onerror=alert(1)&gt;' in page
    assert '&lt;script&gt;' in page and '&lt;i&gt;app1&lt;/i&gt;' in page
    table_row = [line for line in page.splitlines() if 'onerror' in line and line.startswith('|')][0]
    assert table_row.count(' | ') == 7 and "\\|'x'" in table_row and '# heading' in table_row


def test_prometheus_temp_file_has_a_unique_name():
    """issue 17, info: a fixed <path>.tmp let two report runs at once write into the same file."""
    import os
    import yaml
    playbook_path = os.path.join(os.path.dirname(_report.__file__), '..', '..', 'playbooks', 'report.yml')
    with open(playbook_path) as handle:
        tasks = [task for play in yaml.safe_load(handle) for task in play.get('tasks', [])]
    names = [task['name'] for task in tasks]
    temp = tasks[names.index('Make a unique temp file for the Prometheus metrics')]['ansible.builtin.tempfile']
    write = tasks[names.index('Write the Prometheus metrics (temp file)')]['ansible.builtin.copy']
    move = tasks[names.index('Put the Prometheus metrics in place (rename)')]['ansible.builtin.command']
    assert temp['state'] == 'file' and temp['path'] == '{{ _ksef_report_paths.prometheus | dirname }}'
    assert write['dest'] == move['argv'][2] == '{{ _ksef_report_prometheus_tmp.path }}'


# ---------------------------------------------------------------------------------------------
# quota forecast
# ---------------------------------------------------------------------------------------------

def _fleet(auth, offline, days=200):
    certificates = [cert('A%03d' % n, 'auth-%03d' % n, days + n % 3) for n in range(auth)]
    certificates += [cert('O%03d' % n, 'offl-%03d' % n, days + n % 3, cert_type='offline') for n in range(offline)]
    declarations = [declared(c['name'], c['type']) for c in certificates]
    return certificates, declarations


def test_the_forecast_gives_the_peak_of_the_coming_renewal_waves_and_its_date():
    certificates, declarations = _fleet(95, 0)
    report = _report.build_report({'certificates': certificates, 'limits': dict(LIMITS, certificate={'remaining': 5, 'limit': 100})},
                                  declarations, now=NOW)
    quota = report['quota']
    assert quota['active'] == 95 and quota['limit'] == 100
    # the earliest renewals (day 170) fill the five free slots: the peak is the limit, no outage
    assert quota['peak_active'] == 100 and quota['outages'] == [] and quota['alert'] == ''
    assert quota['peak_date'] == _rules.format_datetime(NOW + datetime.timedelta(days=170))
    assert quota['peak_timestamp'] == int((NOW + datetime.timedelta(days=170)).timestamp())


def test_the_forecast_finds_offline_renewals_that_cannot_happen_before_expiry_months_ahead():
    certificates, declarations = _fleet(2, 4)
    report = _report.build_report({'certificates': certificates, 'limits': dict(LIMITS, certificate={'remaining': 1, 'limit': 7})},
                                  declarations, now=NOW)
    quota = report['quota']
    # Day 170: one free slot; auth-000 cycles through it, offl-000 keeps it, offl-003 (same expiry) finds none
    # before it expires on day 200. Later renewals wait for the slots Offline predecessors give back.
    assert quota['peak_active'] == 7
    assert quota['outages'] == [{'certificate': 'offl-003/offline', 'outage_at': _rules.format_datetime(_rules.parse_datetime(at(200)))}]
    assert 'cannot be renewed before they expire' in quota['alert'] and 'offl-003/offline from' in quota['alert']
    families = dict((family.name, family) for family in text_string_to_metric_families(_report.prometheus_text(report)))
    assert families['ksef_certificate_quota_forecast_peak'].samples[0].value == 7
    assert families['ksef_certificate_quota_forecast_outages'].samples[0].value == 1
    first = families['ksef_certificate_quota_forecast_first_outage_timestamp_seconds'].samples[0].value
    assert first == int(_rules.parse_datetime(at(200)).timestamp())
    assert families['ksef_certificate_quota_forecast_peak_timestamp_seconds'].samples[0].value == quota['peak_timestamp']


def test_superseded_and_undeclared_certificates_give_their_slots_back_when_they_expire():
    certificates, declarations = _fleet(0, 1)
    certificates.append(cert('S001', 'offl-000', 20, cert_type='offline'))       # superseded, expires first
    certificates.append(cert('U001', 'nobody', 60))                               # undeclared
    report = _report.build_report({'certificates': certificates, 'limits': dict(LIMITS, certificate={'remaining': 0, 'limit': 3})},
                                  declarations, now=NOW)
    assert report['quota']['outages'] == [] and report['quota']['peak_active'] == 3


def test_no_limits_no_forecast_and_no_metric():
    certificates, declarations = _fleet(1, 0)
    report = _report.build_report({'certificates': certificates}, declarations, now=NOW)
    assert report['quota'] is None
    assert 'ksef_certificate_quota_forecast' not in _report.prometheus_text(report)

# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This plugin_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""The certificate report of playbooks/report.yml, and its Prometheus text format.

build_report() turns a ksef_certificate_info result (with limits) and the inventory's declarations
(ksef_deploy_declared) into rows with a state and an optional alert; prometheus_text() writes that
report for node_exporter's textfile collector. The renewal rule is _rules.renewal_due, the one the
modules apply, so the report never disagrees with provisioning about what is due.

States of a row:
- current: active, and the newest active certificate of its name and type;
- superseded: active, but a newer active certificate of the same name and type exists (an Offline
  certificate stays active after its renewal, so QR codes II already printed keep verifying; an
  Authentication one is waiting for its revocation). Never alerted on: its successor is;
- blocked: KSeF is completing its revocation; revoked; expired.
Only a current certificate can raise an alert.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

from ansible_collections.ksef.certificates.plugins.module_utils import _rules
from ansible_collections.ksef.certificates.plugins.module_utils._api import LIMITS
from ansible_collections.ksef.certificates.plugins.module_utils._engine.waves import Renewal, forecast
from ansible_collections.ksef.certificates.plugins.plugin_utils import _token_report
from ansible_collections.ksef.certificates.plugins.plugin_utils._deploy import deploy_id

KSEF_STATUSES = ('active', 'blocked', 'revoked', 'expired')
STATES = ('current', 'superseded', 'blocked', 'revoked', 'expired')


def _declarations(declared):
    """{'name|type': {'hosts': [...], 'renew_before_days': N}}: the widest window of the hosts that declare it."""
    result = {}
    for item in declared or []:
        entry = result.setdefault(item['id'], {'hosts': [], 'renew_before_days': None})
        if item.get('host') is not None and item['host'] not in entry['hosts']:
            entry['hosts'].append(item['host'])
        days = item.get('renew_before_days')
        if days is not None:
            days = int(days)
            entry['renew_before_days'] = days if entry['renew_before_days'] is None else max(days, entry['renew_before_days'])
    return result


def _state(cert, newest_active, now):
    status = cert['status']
    if status == 'active' and _rules.expired(cert['valid_to'], now):
        return 'expired'
    if status != 'active':
        return status if status in STATES else 'expired'
    newest = newest_active[(cert['name'], cert['type'])]
    return 'current' if newest['serial_number'] == cert['serial_number'] else 'superseded'


def _newest_active(certificates):
    """{(name, type): the active certificate with the latest valid_to (the serial breaks ties)}."""
    newest = {}
    for cert in certificates:
        if cert['status'] != 'active':
            continue
        key = (cert['name'], cert['type'])
        known = newest.get(key)
        order = (_rules.parse_datetime(cert['valid_to']), cert['serial_number'])
        if known is None or order > (_rules.parse_datetime(known['valid_to']), known['serial_number']):
            newest[key] = cert
    return newest


def _alert(cert, days, declaration, threshold_days, now):
    if declaration is None:
        if _rules.renewal_due(cert['valid_to'], now, threshold_days):
            return 'expires in %d days and no inventory host declares it' % days
        return ''
    window = declaration['renew_before_days']
    if _rules.renewal_due(cert['valid_to'], now, window):
        return ('expires in %d days, inside its %d-day renewal window: provisioning did not renew it'
                % (days, window if window is not None else _rules.DEFAULT_RENEW_BEFORE_DAYS))
    return ''


def _note(cert, state, successor):
    if state == 'superseded':
        if not _rules.revoke_superseded(cert['type']):
            return ('superseded by %s; stays active until it expires, so QR codes II already issued keep verifying'
                    % successor['serial_number'])
        return 'superseded by %s; still active until it is revoked' % successor['serial_number']
    if state == 'blocked':
        return 'KSeF is completing its revocation'
    return ''


def quota_forecast(rows, declarations, limits, now):
    """The coming renewals of the declared certificates against the active-certificate limit (_waves.forecast).

    Each current declared certificate renews when its window opens (an Authentication predecessor is revoked, an
    Offline one stays active until it expires); a superseded or undeclared active certificate gives its slot
    back when it expires. None when KSeF gave no limit.
    """
    certificate = (limits or {}).get('certificate') or {}
    if certificate.get('limit') is None or certificate.get('remaining') is None:
        return None
    renewals = []
    releases = []
    for row in rows:
        if row['state'] not in ('current', 'superseded'):
            continue
        valid_to = _rules.parse_datetime(row['valid_to'])
        declaration = declarations.get(deploy_id(row['name'], row['type']))
        if row['state'] == 'superseded' or declaration is None:
            releases.append(valid_to)
            continue
        window = declaration['renew_before_days']
        renew_at = valid_to - datetime.timedelta(days=_rules.DEFAULT_RENEW_BEFORE_DAYS if window is None else window)
        renewals.append(Renewal('%s/%s' % (row['name'], row['type']), renew_at, valid_to,
                                1 if row['type'] == 'authentication' else 0))
    active = certificate['limit'] - certificate['remaining']
    result = forecast(renewals, active, certificate['limit'], now, releases=releases)
    outages = [{'certificate': label, 'outage_at': _rules.format_datetime(moment)} for label, moment in result.outages]
    return {
        'active': active,
        'limit': certificate['limit'],
        'peak_active': result.peak_active,
        'peak_date': _rules.format_datetime(result.peak_date),
        'peak_timestamp': int(result.peak_date.timestamp()),
        'outages': outages,
        'alert': _quota_alert(outages, certificate['limit']),
    }


def _quota_alert(outages, limit):
    if not outages:
        return ''
    where = ', '.join('%s from %s' % (entry['certificate'], entry['outage_at']) for entry in outages)
    return ('%d declared certificate(s) cannot be renewed before they expire under the active-certificate limit (%d): '
            '%s. Raise the limit, revoke unused certificates, or let superseded Offline certificates go earlier '
            '(release_offline_predecessors)' % (len(outages), limit, where))


def build_report(info, declared=None, threshold_days=30, now=None, subject=None):
    """The report dict (JSON-serialisable) of a ksef_certificate_info result and the declarations."""
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc)
    threshold_days = int(threshold_days)
    declarations = _declarations(declared)
    certificates = list(info.get('certificates') or [])
    newest_active = _newest_active(certificates)
    rows = []
    for cert in certificates:
        state = _state(cert, newest_active, now)
        declaration = declarations.get(deploy_id(cert['name'], cert['type']))
        days = _rules.days_remaining(cert['valid_to'], now)
        alert = _alert(cert, days, declaration, threshold_days, now) if state == 'current' else ''
        expiry = _rules.parse_datetime(cert['valid_to'])
        rows.append({
            'serial_number': cert['serial_number'],
            'name': cert['name'],
            'type': cert['type'],
            'status': cert['status'],
            'state': state,
            'valid_from': _rules.format_datetime(cert.get('valid_from')),
            'valid_to': _rules.format_datetime(cert['valid_to']),
            'expiry_timestamp': int(expiry.timestamp()),
            'days_remaining': days,
            'last_use_date': _rules.format_datetime(cert.get('last_use_date')),
            'declared_by': list(declaration['hosts']) if declaration else [],
            'note': _note(cert, state, newest_active.get((cert['name'], cert['type']))),
            'alert': alert,
        })
    return {
        'generated_at': _rules.format_datetime(now),
        'generated_timestamp': int(now.timestamp()),
        'subject': subject or '',
        'threshold_days': threshold_days,
        'limits': info.get('limits') or {},
        'quota': quota_forecast(rows, declarations, info.get('limits'), now),
        'certificates': rows,
        'alerts': [row for row in rows if row['alert']],
    }


# ---------------------------------------------------------------------------------------------
# Prometheus text format (exposition format 0.0.4), for node_exporter's textfile collector
# ---------------------------------------------------------------------------------------------

def _escape(value):
    return str(value).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def _labels(labels):
    return '{%s}' % ','.join('%s="%s"' % (key, _escape(value)) for key, value in labels)


class _Family:
    def __init__(self, name, help_text):
        self.name = name
        self.help_text = help_text
        self.samples = []

    def add(self, labels, value):
        self.samples.append((labels, value))

    def lines(self):
        yield '# HELP %s %s' % (self.name, self.help_text)
        yield '# TYPE %s gauge' % self.name
        for labels, value in self.samples:
            yield '%s%s %s' % (self.name, _labels(labels) if labels else '', _number(value))


def _number(value):
    if isinstance(value, bool):
        return '1' if value else '0'
    return repr(value) if isinstance(value, float) else str(int(value))


def _quota_families(quota, subject):
    """The forecast of the coming renewals against the active-certificate limit, as gauges."""
    if not quota:
        return []
    peak = _Family('ksef_certificate_quota_forecast_peak',
                   'Most active certificates the coming renewal waves of the declared certificates reach.')
    peak.add(subject, quota['peak_active'])
    peak_at = _Family('ksef_certificate_quota_forecast_peak_timestamp_seconds',
                      'When the forecast peak of active certificates is first reached, in seconds since the epoch.')
    peak_at.add(subject, quota['peak_timestamp'])
    outages = _Family('ksef_certificate_quota_forecast_outages',
                      'Declared certificates that cannot be renewed before they expire under the active-certificate limit.')
    outages.add(subject, len(quota['outages']))
    families = [peak, peak_at, outages]
    if quota['outages']:
        first = _Family('ksef_certificate_quota_forecast_first_outage_timestamp_seconds',
                        'When the first forecast outage begins, in seconds since the epoch.')
        first.add(subject, min(int(_rules.parse_datetime(entry['outage_at']).timestamp()) for entry in quota['outages']))
        families.append(first)
    return families


def prometheus_text(report):
    """The report as Prometheus gauges, one family per metric; ends with a newline as the format requires."""
    subject = [('subject', report['subject'])] if report.get('subject') else []
    expiry = _Family('ksef_certificate_expiry_timestamp_seconds',
                     'End of validity (valid_to) of the KSeF certificate, in seconds since the epoch.')
    status = _Family('ksef_certificate_status',
                     'KSeF status of the certificate: 1 for its status, 0 for the others (active, blocked, revoked, expired).')
    state = _Family('ksef_certificate_state',
                    'Report state of the certificate: 1 for its state, 0 for the others; superseded = active with a newer '
                    'active certificate of the same name and type.')
    declared = _Family('ksef_certificate_declared', '1 when an inventory host declares the certificate (provisioning renews it).')
    alert = _Family('ksef_certificate_alert', '1 when the certificate expires within the threshold and nothing will renew it.')
    for row in report['certificates']:
        labels = subject + [('name', row['name']), ('type', row['type']), ('serial_number', row['serial_number'])]
        expiry.add(labels, row['expiry_timestamp'])
        for value in KSEF_STATUSES:
            status.add(labels + [('status', value)], row['status'] == value)
        for value in STATES:
            state.add(labels + [('state', value)], row['state'] == value)
        declared.add(labels, bool(row['declared_by']))
        alert.add(labels, bool(row['alert']))
    families = [expiry, status, state, declared, alert]

    limits = report.get('limits') or {}
    for kind, what in (('enrollment', 'enrollment requests'), ('certificate', 'active certificates')):
        pair = limits.get(kind) or {}
        for field in ('remaining', 'limit'):
            if pair.get(field) is None:
                continue
            family = _Family('ksef_%s_quota_%s' % (kind, field),
                             '%s of the subject\'s %s quota (%s).'
                             % ('What is left' if field == 'remaining' else 'The size', what, LIMITS))
            family.add(subject, pair[field])
            families.append(family)
    if limits.get('can_request') is not None:
        family = _Family('ksef_enrollment_allowed', '1 when KSeF allows the subject a new enrollment request now.')
        family.add(subject, bool(limits['can_request']))
        families.append(family)

    families += _quota_families(report.get('quota'), subject)
    alerts = _Family('ksef_report_alerts', 'Number of certificates the report alerts on.')
    alerts.add(subject, len(report['alerts']))
    generated = _Family('ksef_report_generated_timestamp_seconds', 'When the report was made, in seconds since the epoch.')
    generated.add(subject, report['generated_timestamp'])
    families += [alerts, generated]
    text = '\n'.join(line for family in families for line in family.lines()) + '\n'
    if report.get('tokens'):
        # The KSeF token section (report.yml adds it): its own metric families, after the certificates'.
        text += _token_report.token_prometheus_text(report['tokens'], report.get('subject') or '')
    return text

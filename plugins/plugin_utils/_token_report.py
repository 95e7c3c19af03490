# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This plugin_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""The KSeF token part of the report playbook: the tokens that still log in, and the days to the sunset.

KSeF tokens may be used to authenticate only until 31 December 2026 (regulation of 12.12.2025, Dz.U. 2025
poz. 1815, par. 13 ust. 1 pkt 1). The Ministry proposed keeping them longer; nothing was decided as of July
2026, so the date is a setting (report.yml: ksef_token_sunset_date) and never written into the code paths.
build_token_report() turns a ksef_token_info result into rows with an alert; token_prometheus_text()
writes them for node_exporter's textfile collector.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

from ansible_collections.ksef.certificates.plugins.module_utils import _rules

DEFAULT_SUNSET_DATE = '2026-12-31'
# Tokens that log in now (active) or will (pending); the report lists these.
LIVE_STATUSES = ('pending', 'active')


def parse_date(value):
    """A YYYY-MM-DD text (or a date) -> datetime.date; ValueError for anything else."""
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    return datetime.datetime.strptime(str(value).strip(), '%Y-%m-%d').date()


def _alert(days_to_sunset, threshold_days, sunset):
    if days_to_sunset < 0:
        return 'KSeF stopped accepting tokens after %s; revoke it and check what still relies on it' % sunset.isoformat()
    if days_to_sunset <= threshold_days:
        return ('still Active %d days before KSeF stops accepting tokens (last day %s): move its integration to a certificate '
                '(playbook ksef.certificates.migrate_token)' % (days_to_sunset, sunset.isoformat()))
    return ''


def build_token_report(info, sunset_date=DEFAULT_SUNSET_DATE, threshold_days=30, now=None):
    """The token section (JSON-serialisable) of a ksef_token_info result: live tokens, newest first."""
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc)
    sunset = parse_date(sunset_date)
    threshold_days = int(threshold_days)
    days_to_sunset = (sunset - now.astimezone(datetime.timezone.utc).date()).days
    rows = []
    for token in info.get('tokens') or []:
        if token['status'] not in LIVE_STATUSES:
            continue
        last_use = _rules.parse_datetime_or_none(token.get('last_use_date'))
        rows.append({
            'reference_number': token['reference_number'],
            'description': token['description'],
            'status': token['status'],
            'permissions': list(token.get('permissions') or []),
            'author_identifier': token.get('author_identifier'),
            'date_created': token.get('date_created'),
            'last_use_date': token.get('last_use_date'),
            'last_use_timestamp': int(last_use.timestamp()) if last_use else None,
            'days_since_last_use': token.get('days_since_last_use'),
            'alert': _alert(days_to_sunset, threshold_days, sunset),
        })
    return {
        'sunset_date': sunset.isoformat(),
        'days_to_sunset': days_to_sunset,
        'threshold_days': threshold_days,
        'tokens': rows,
        'alerts': [row for row in rows if row['alert']],
    }


def _escape(value):
    return str(value).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def _sample(name, labels, value):
    text = ','.join('%s="%s"' % (key, _escape(label)) for key, label in labels)
    return '%s{%s} %s' % (name, text, value) if text else '%s %s' % (name, value)


def _family(name, help_text, samples):
    return ['# HELP %s %s' % (name, help_text), '# TYPE %s gauge' % name] + [_sample(name, labels, value) for labels, value in samples]


def token_prometheus_text(tokens, subject=''):
    """The token section as Prometheus gauges (exposition format 0.0.4); ends with a newline."""
    base = [('subject', subject)] if subject else []
    rows = tokens['tokens']
    labelled = [(row, base + [('reference_number', row['reference_number']), ('description', row['description'])]) for row in rows]
    lines = []
    lines += _family('ksef_token_sunset_days_remaining',
                     'Days until the last day KSeF accepts tokens for authentication (%s; a setting).' % tokens['sunset_date'],
                     [(base, int(tokens['days_to_sunset']))])
    lines += _family('ksef_tokens_live', 'Number of KSeF tokens that are Active or Pending.', [(base, len(rows))])
    lines += _family('ksef_token_active', '1 for each KSeF token that is Active (0 while it is Pending).',
                     [(labels, 1 if row['status'] == 'active' else 0) for row, labels in labelled])
    lines += _family('ksef_token_last_use_timestamp_seconds', 'Last login with the KSeF token, in seconds since the epoch.',
                     [(labels, row['last_use_timestamp']) for row, labels in labelled if row['last_use_timestamp'] is not None])
    lines += _family('ksef_token_alert', '1 when the KSeF token is still live within the alert threshold of the sunset date.',
                     [(labels, 1 if row['alert'] else 0) for row, labels in labelled])
    return '\n'.join(lines) + '\n'

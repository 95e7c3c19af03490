# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils import _rules

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize('name, valid', [
    ('erp-1', True),
    (u'Zażółć gęślą jaźń', True),
    ('a_b-c 1', True),
    ('abcd', False),                       # too short
    ('x' * 100, True),
    ('x' * 101, False),                    # too long
    ('erp-1\n', False),                    # a trailing newline: '$' would accept it, fullmatch does not
    ('erp/1', False),
    ('erp.1', False),
    ('', False),
    (None, False),
])
def test_certificate_name_rule(name, valid):
    assert _rules.certificate_name_valid(name) is valid
    problem = _rules.certificate_name_problem(name)
    if valid:
        assert problem is None
    else:
        assert 'is not accepted by KSeF' in problem and '5 to 100 characters' in problem


def test_subject_layout_is_the_csharp_client_order():
    assert [a.field for a in _rules.SUBJECT_LAYOUT] == [
        'commonName', 'surname', 'givenName', 'organizationName', 'organizationIdentifier', 'countryName',
        'serialNumber', 'uniqueIdentifier']
    printable = [a.field for a in _rules.SUBJECT_LAYOUT if a.string_type == 'PrintableString']
    assert printable == ['countryName', 'serialNumber']


def test_subject_values_skips_empty_fields_and_reads_both_spellings():
    values = _rules.subject_values({'commonName': 'Firma', 'country_name': 'PL', 'surname': '', 'givenName': None,
                                    'serialNumber': 'VATPL-5265877635'})
    assert [(a.oid, v) for a, v in values] == [('2.5.4.3', 'Firma'), ('2.5.4.6', 'PL'), ('2.5.4.5', 'VATPL-5265877635')]


@pytest.mark.parametrize('text, expected', [
    ('2025-10-11T12:23:56.0154302+00:00', datetime.datetime(2025, 10, 11, 12, 23, 56, 15430, tzinfo=UTC)),
    ('2025-10-11T14:23:56+02:00', datetime.datetime(2025, 10, 11, 12, 23, 56, tzinfo=UTC)),
    ('2025-10-11T12:23:56Z', datetime.datetime(2025, 10, 11, 12, 23, 56, tzinfo=UTC)),
    ('2025-10-11 12:23', datetime.datetime(2025, 10, 11, 12, 23, tzinfo=UTC)),
    ('2025-10-11T12:23:56', datetime.datetime(2025, 10, 11, 12, 23, 56, tzinfo=UTC)),
    ('2025-10-11T12:23:56-0130', datetime.datetime(2025, 10, 11, 13, 53, 56, tzinfo=UTC)),
])
def test_parse_datetime(text, expected):
    parsed = _rules.parse_datetime(text)
    assert parsed == expected and parsed.tzinfo is not None
    assert _rules.parse_datetime_or_none(text) == expected


@pytest.mark.parametrize('text', ['yesterday', '2025-10-11', '2025-10-11T12:23:56Zjunk', 42])
def test_parse_datetime_refuses(text):
    with pytest.raises(ValueError):
        _rules.parse_datetime(text)
    assert _rules.parse_datetime_or_none(text) is None


def test_parse_datetime_or_none_of_nothing():
    assert _rules.parse_datetime_or_none(None) is None
    assert _rules.parse_datetime_or_none('') is None


def test_parse_datetime_passes_datetimes_through():
    naive = datetime.datetime(2026, 1, 1)
    assert _rules.parse_datetime(naive) == naive.replace(tzinfo=UTC)
    assert _rules.parse_datetime(NOW) is NOW


@pytest.mark.parametrize('value, expected', [
    # KSeF's .NET round-trip form (7 digits), microseconds, none, 'Z', offsets: one form, cut to whole seconds.
    ('2028-07-11T12:23:56.0154302+00:00', '2028-07-11T12:23:56+00:00'),
    ('2028-07-11T12:23:56.999999+00:00', '2028-07-11T12:23:56+00:00'),   # cut, not rounded up to :57
    ('2028-07-11T12:23:56+00:00', '2028-07-11T12:23:56+00:00'),
    ('2028-07-11T12:23:56Z', '2028-07-11T12:23:56+00:00'),
    ('2028-07-11T12:23:56', '2028-07-11T12:23:56+00:00'),                # no offset: UTC
    ('2028-07-11T14:23:56.5+02:00', '2028-07-11T12:23:56+00:00'),
    ('2028-01-01T00:30:00-01:00', '2028-01-01T01:30:00+00:00'),
    ('2028-01-01T00:30:00+01:00', '2027-12-31T23:30:00+00:00'),         # the offset moves the date too
    (datetime.datetime(2028, 7, 11, 12, 23, 56, 15430, tzinfo=UTC), '2028-07-11T12:23:56+00:00'),
    (datetime.datetime(2028, 7, 11, 12, 23, 56), '2028-07-11T12:23:56+00:00'),                  # naive = UTC
    (datetime.datetime(2028, 7, 11, 14, 23, 56, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
     '2028-07-11T12:23:56+00:00'),
    (None, None),
    ('', None),
    ('not a date', 'not a date'),                                         # shown as it came, never hidden
])
def test_format_datetime_gives_one_form(value, expected):
    assert _rules.format_datetime(value) == expected


def test_format_datetime_round_trips_through_parse_and_fromisoformat():
    text = _rules.format_datetime('2028-07-11T12:23:56.0154302Z')
    assert _rules.format_datetime(text) == text
    # datetime.fromisoformat reads '+00:00' (not 'Z') on every Python the collection supports (3.9+).
    assert datetime.datetime.fromisoformat(text) == datetime.datetime(2028, 7, 11, 12, 23, 56, tzinfo=UTC)


def test_the_x509_summary_and_the_ksef_record_agree():
    # The same end of validity from the certificate (whole seconds) and from KSeF (fractions): equal strings.
    from_certificate = _rules.format_datetime(datetime.datetime(2028, 7, 11, 12, 23, 56, tzinfo=UTC))
    assert from_certificate == _rules.format_datetime('2028-07-11T12:23:56.0154302+00:00')


@pytest.mark.parametrize('days_left, renew_before_days, due', [
    (31, None, False),
    (30, None, True),                     # the default window is 30 days, its last day included
    (30.5, None, False),
    (45, 45, True),
    (46, 45, False),
    (1, 0, False),
    (0, 0, True),
    (-1, 30, True),                       # expired is due as well
])
def test_renewal_due(days_left, renew_before_days, due):
    valid_to = NOW + datetime.timedelta(days=days_left)
    assert _rules.renewal_due(valid_to, NOW, renew_before_days) is due
    assert _rules.renewal_due(valid_to.strftime('%Y-%m-%dT%H:%M:%S.%fZ'), NOW, renew_before_days) is due


def test_renewal_due_default_is_thirty_days():
    assert _rules.DEFAULT_RENEW_BEFORE_DAYS == 30
    assert _rules.renewal_due(NOW + datetime.timedelta(days=30), NOW)
    assert not _rules.renewal_due(NOW + datetime.timedelta(days=30, seconds=1), NOW)


@pytest.mark.parametrize('renew_before_days, lifetime_days, every_run', [
    (30, 730, None), (729, 730, None), (730, 730, 730), (800, 730, 730), (None, 730, None),
])
def test_renews_every_run_when_the_window_reaches_the_lifetime(renew_before_days, lifetime_days, every_run):
    valid_to = NOW + datetime.timedelta(days=lifetime_days)
    assert _rules.renews_every_run(renew_before_days, NOW, valid_to) == every_run
    assert _rules.renews_every_run(renew_before_days, NOW.strftime('%Y-%m-%dT%H:%M:%SZ'),
                                   valid_to.strftime('%Y-%m-%dT%H:%M:%S.%fZ')) == every_run
    assert _rules.renews_every_run(renew_before_days, None, valid_to) is None


def test_expired_and_days_remaining():
    assert _rules.expired(NOW, NOW)
    assert not _rules.expired(NOW + datetime.timedelta(seconds=1), NOW)
    assert _rules.days_remaining(NOW - datetime.timedelta(hours=1), NOW) == -1
    assert _rules.days_remaining('2026-06-03T12:00:00Z', NOW) == 2


@pytest.mark.parametrize('number, text', [
    (0x0123456789ABCDEF, '0123456789ABCDEF'),
    (1, '0000000000000001'),
    ('abc', '0000000000000ABC'),
    (' 0123456789abcdef\n', '0123456789ABCDEF'),
    (0x1234567890ABCDEF12, '1234567890ABCDEF12'),   # longer serials keep every digit
])
def test_serial_number_text_is_ksef_notation(number, text):
    assert _rules.serial_number_text(number) == text


def test_serial_number_text_refuses_what_is_not_hex():
    with pytest.raises(ValueError):
        _rules.serial_number_text('xyz')

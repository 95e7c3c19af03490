# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fake KSeF speaks the whole gateway: every public method of KsefApi, with the same parameters, and the
KSeF behaviours the engine's tests rely on."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import inspect

import pytest

from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.ksef.certificates.plugins.module_utils._api import KsefApi
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefApiError
from ansible_collections.ksef.certificates.tests.unit.plugins.fake_ksef import FakeClock, FakeKsef


def public_methods(cls):
    return dict((name, member) for name, member in inspect.getmembers(cls, inspect.isfunction) if not name.startswith('_'))


def parameters(function):
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def test_every_method_of_the_gateway_is_in_the_fake_with_the_same_parameters():
    gateway = public_methods(KsefApi)
    fake = public_methods(FakeKsef)
    assert 'prove_login' in gateway and 'calls_by_endpoint' in gateway and 'query_pages' in gateway
    missing = sorted(set(gateway) - set(fake))
    assert not missing, 'FakeKsef lacks %s' % missing
    differ = ['%s: %s != %s' % (name, parameters(fake[name]), parameters(gateway[name]))
              for name in gateway if parameters(fake[name]) != parameters(gateway[name])]
    assert not differ, differ


def test_query_filters_like_ksef_and_pages_newest_first(ksef, clock):
    key = ec.generate_private_key(ec.SECP256R1())
    old = ksef.add_certificate('erp-old', 'authentication', key)
    clock.advance(hours=1)
    new = ksef.add_certificate('erp', 'offline', key, status='Revoked')
    assert [i['certificateSerialNumber'] for i in ksef.query(name='erp')] == [new, old], 'a substring, newest first'
    assert [i['certificateSerialNumber'] for i in ksef.query(status='active')] == [old]
    assert [i['certificateSerialNumber'] for i in ksef.query(certificate_type='Offline')] == [new]
    assert [i['certificateSerialNumber'] for i in ksef.query(serial_number=old)] == [old]
    ksef.page_size = 1
    assert [len(page) for page in ksef.query_pages()] == [1, 1] and ksef.count('query') == 6


def test_limits_and_calls_are_counted_per_endpoint_of_a_run(ksef):
    assert ksef.limits_for('POST /certificates/enrollments') == {1: 10, 60: 30, 3600: 120}
    assert ksef.limits_for('POST /auth/challenge') == {1: 60}
    assert ksef.limits_source() == 'published' and ksef.seconds_until_slot('POST', '/certificates/enrollments') == 0.0
    ksef.ensure_rate_limits()
    ksef.ensure_rate_limits()
    ksef.limits()
    assert ksef.calls_by_endpoint() == {'GET /rate-limits': 1, 'GET /certificates/limits': 1}
    assert ksef.limits_source() == 'GET /rate-limits'
    ksef.new_run()
    assert ksef.calls_by_endpoint() == {} and ksef.limits_source() == 'published'


def test_past_the_rate_limit_ksef_answers_429(ksef):
    ksef.limit_rate(per_minute=2)
    ksef.pacing_client = None      # nothing paces the calls now: KSeF's counters refuse the third
    ksef.limits()
    ksef.limits()
    with pytest.raises(KsefApiError) as error:
        ksef.limits()
    assert error.value.status == 429 and [call for call, dummy in ksef.refused] == ['limits']


def test_revoke_answers_like_ksef(ksef):
    serial = ksef.add_certificate('erp', 'authentication', ec.generate_private_key(ec.SECP256R1()))
    assert ksef.revoke(serial, 'superseded') is True and ksef.active() == []
    assert ksef.revoke(serial) is False, 'no longer active: 25009'
    with pytest.raises(KsefApiError) as error:
        ksef.revoke('00000000000000FF')
    assert 25008 in error.value.codes
    assert ksef.revocations() == [(serial, 'Superseded'), (serial, None), ('00000000000000FF', None)]


def test_tokens_are_listed_by_description_and_their_statuses_move_on(ksef):
    made = ksef.generate_token('erp invoicing', ['CredentialsRead'])
    ksef.add_token({'referenceNumber': 'R2', 'description': 'ERP other', 'status': 'Active'}, statuses=['Pending', 'Active'])
    assert [t['referenceNumber'] for t in ksef.tokens(description='erp')] == [made['referenceNumber'], 'R2']
    assert [t['referenceNumber'] for t in ksef.tokens(statuses=['Pending'])] == [made['referenceNumber']]
    assert [ksef.token_status('R2')['status'] for dummy in range(3)] == ['Pending', 'Active', 'Active']
    ksef.revoke_token(made['referenceNumber'])
    assert ksef.token_status(made['referenceNumber'])['status'] == 'Revoked'


def test_the_clock_moves_only_when_asked():
    clock = FakeClock(start=1000.0)
    clock.sleep(1.5)
    clock.advance(minutes=1)
    clock.advance(0.5)
    assert clock() == clock.monotonic() == 1062.0 and clock.sleeps == [1.5]
    assert (clock.now() - FakeClock().now()).total_seconds() == 62.0

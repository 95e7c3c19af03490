# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The orchestration of the parts (the behaviour is covered end to end in modules/test_ksef_certificate.py)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import json

import pytest

from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.plugins.module_utils._errors import KsefError
from ansible_collections.ksef.certificates.tests.unit.plugins.fake_ksef import single


def test_a_healthy_set_costs_one_query_and_decides_without_state(run, ksef, tmp_path):
    args = single(tmp_path)
    assert run(args)['action'] == 'enrolled'
    assert run(args)['action'] == 'none'
    assert ksef.names() == ['query']


def test_an_expired_intent_is_discarded_by_the_engine_with_its_next_key(run, ksef, clock, tmp_path):
    args = single(tmp_path)
    run(args)
    state_path = tmp_path / 'erp-production.key.ksef-pending.json'
    next_key = tmp_path / 'erp-production.key.next'
    next_key.write_text('unused key')
    old = (clock.now() - datetime.timedelta(hours=2)).strftime('%Y-%m-%dT%H:%M:%S.%fZ')
    state_path.write_text(json.dumps({
        'phase': 'intent', 'name': 'erp-production', 'type': 'authentication', 'public_key_sha256': 'f' * 64,
        'key_path': str(next_key), 'action': 'renewed', 'superseded': [], 'known_serials': [], 'intent_time': old}))
    result = run(args)
    assert result['action'] == 'none' and result['reason'] == 'healthy'
    assert any('a new enrollment is allowed' in warning for warning in run.warnings)
    assert not state_path.exists() and not next_key.exists()
    assert _crypto.read_certificate_file(str(tmp_path / 'erp-production.pem')) is not None


def _many(tmp_path, count, prefix='fleet'):
    return dict(type='authentication', certificates=[
        dict(name='%s-%03d' % (prefix, i), private_key_path=str(tmp_path / ('%s-%03d.key' % (prefix, i))),
             certificate_path=str(tmp_path / ('%s-%03d.pem' % (prefix, i)))) for i in range(count)])


def test_rate_limits_are_read_once_when_there_is_work_and_never_for_a_no_op(run, ksef, tmp_path):
    args = _many(tmp_path, 3)
    run(args)
    assert ksef.names()[:2] == ['query', 'rate_limits'] and ksef.count('rate_limits') == 1
    del ksef.calls[:]
    assert run(args)['changed'] is False and ksef.names() == ['query']


def test_check_mode_reports_the_expected_calls_and_duration(run, ksef, tmp_path):
    predicted = run(_many(tmp_path, 40), check_mode=True)
    budget = predicted['budget']
    assert budget['calls']['POST /certificates/enrollments'] == 40
    assert budget['calls']['POST /certificates/retrieve'] == 4
    assert budget['fits_hour'] is True and budget['limits_source'] == 'GET /rate-limits'
    # 30 a minute: the 31st enrollment goes after the first minute, its certificate about 1 s later
    assert 60 < budget['expected_seconds'] < 70
    assert 'enroll' not in ksef.names()


def test_a_set_over_the_hour_budget_sends_what_fits_and_leaves_the_rest_for_a_later_run(run, ksef, tmp_path):
    ksef.limits_reply = {'canRequest': True, 'enrollment': {'remaining': 300, 'limit': 300},
                         'certificate': {'remaining': 200, 'limit': 200}}
    result = run(_many(tmp_path, 121))
    actions = [entry['action'] for entry in result['certificates']]
    assert actions == ['enrolled'] * 120 + ['deferred']
    assert result['quota']['deferred'] == ['fleet-120/authentication (certificates[120])']
    assert result['budget']['calls']['POST /certificates/enrollments'] == 120 and result['budget']['fits_hour'] is True
    assert ksef.count('enroll') == 120
    assert any('1 due certificate(s) wait for a later run' in warning for warning in run.warnings)


def test_revocations_over_the_hour_budget_fail_before_anything_is_sent(run, ksef, tmp_path):
    args = dict(_many(tmp_path, 121), state='absent')
    for item in args['certificates']:
        ksef.add_certificate(item['name'], 'authentication', ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(KsefError) as error:
        run(args)
    assert "does not fit KSeF's hourly rate limit" in str(error.value) and 'Nothing was sent' in str(error.value)
    assert ksef.count('revoke') == 0


def test_a_no_op_reports_an_empty_budget(run, ksef, tmp_path):
    args = _many(tmp_path, 2)
    run(args)
    assert run(args)['budget'] == {'calls': {}, 'expected_seconds': 0.0, 'fits_hour': True, 'limits_source': 'published'}

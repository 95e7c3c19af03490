# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The orchestration of the parts (the behaviour is covered end to end in modules/test_ksef_certificate.py)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import json

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.tests.unit.plugins.modules.test_ksef_certificate import (  # pylint: disable=unused-import
    FakeKsef,
    Run,
    clock,
    ksef,
    run,
    single,
)


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

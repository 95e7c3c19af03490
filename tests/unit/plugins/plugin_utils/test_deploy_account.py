# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ksef_deploy role's batch decisions and per-host account (plugin_utils/_deploy_account.py), as tables."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

from ansible_collections.ksef.certificates.plugins.filter.ksef_deploy import FilterModule
from ansible_collections.ksef.certificates.plugins.plugin_utils import _deploy_account

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
FILTERS = FilterModule().filters()
OLD, NEW = '00000000000000AB', '00000000000000CD'

SETTINGS = {
    'ksef_deploy_certificates': [{'type': 'authentication'}],
    'ksef_deploy_key_location': 'host', 'ksef_deploy_key_type': 'ec', 'ksef_deploy_controller_key_dir': '/c',
    'ksef_deploy_key_dir': '/k', 'ksef_deploy_certificate_dir': '/p', 'ksef_deploy_owner': '', 'ksef_deploy_group': '',
    'ksef_deploy_key_file_mode': '0600', 'ksef_deploy_certificate_file_mode': '0644', 'ksef_deploy_pkcs12_file_mode': '0600',
    'ksef_deploy_key_dir_mode': '0700', 'ksef_deploy_certificate_dir_mode': '0755', 'ksef_deploy_formats': ['pem'],
    'ksef_deploy_renew_before_days': 30, 'ksef_deploy_revoke_superseded': True,
}
HEALTHY = {'key_exists': True, 'next_key_exists': False, 'certificate_exists': True, 'certificate_parsed': True,
           'certificate_matches_key': True, 'certificate_matches_next_key': False, 'serial_number': OLD,
           'valid_to': '2026-12-01T00:00:00+00:00', 'fingerprint_sha256': 'f', 'renewal_due': False}
INFO = {'certificates': [{'serial_number': OLD, 'valid_to': '2026-12-01T00:00:00+00:00'}]}


def prepared(host, certificates=None, **found):
    settings = dict(SETTINGS, ksef_deploy_certificates=certificates or [{'type': 'authentication'}])
    items = FILTERS['ksef_deploy_declarations'](settings, host)
    inspections = [dict(HEALTHY, item=item, **found) for item in items if item['key_location'] == 'host']
    return {'declarations': items, 'inspections': inspections}


def test_a_healthy_batch_keeps_everything_and_says_so():
    decided = _deploy_account.batch({'a': prepared('a'), 'b': prepared('b')}, INFO, NOW)
    assert (decided['enroll'], decided['install'], decided['controller'], decided['pkcs12']) == (0, 0, 0, 0)
    lines = FILTERS['ksef_deploy_account'](prepared('a'), decided['hosts']['a'], {}, {}, False, 'a')
    assert [(line['action'], line['serial_number'], line['changed'], line['failed']) for line in lines] == [
        ('unchanged', OLD, False, False)]
    assert lines[0]['message'] == ('a: a-authentication (authentication, key on host): unchanged; serial %s, valid until '
                                   '2026-12-01T00:00:00+00:00; /p/a-authentication.crt' % OLD)


def test_a_name_declared_by_several_hosts_fails_on_each_and_lists_them():
    same = [{'type': 'authentication', 'name': 'one-name-authentication'}]
    decided = _deploy_account.batch({'a': prepared('a', same), 'b': prepared('b', same), 'c': prepared('c')}, INFO, NOW)
    reason = decided['hosts']['a']['failures']['one-name-authentication|authentication']
    assert reason.endswith('one-name-authentication (authentication) is declared by a, b')
    assert decided['hosts']['b']['failures'] == decided['hosts']['a']['failures']
    assert decided['hosts']['c']['failures'] == {} and decided['hosts']['a']['plan'] == []
    line = FILTERS['ksef_deploy_account'](prepared('a', same), decided['hosts']['a'])[0]
    assert line['failed'] and line['action'] == 'failed' and line['failure'] == reason


def test_a_failed_query_fails_every_host_that_needed_it():
    decided = _deploy_account.batch({'a': prepared('a')}, {'failed': True, 'msg': 'POST /certificates/query: HTTP 500'})
    assert list(decided['hosts']['a']['failures'].values()) == [
        "Cannot read the subject's certificates in KSeF: POST /certificates/query: HTTP 500"]


def test_check_mode_says_what_it_would_do():
    renewing = prepared('a', renewal_due=True)
    decided = _deploy_account.batch({'a': renewing, 'b': prepared('b', certificate_parsed=False, serial_number='')},
                                    INFO, NOW)
    assert decided['enroll'] == 2
    renew = FILTERS['ksef_deploy_account'](renewing, decided['hosts']['a'], {}, {}, True, 'a')[0]
    assert renew['action'] == 'renewed' and renew['changed'] and renew['check_mode']
    assert renew['superseded'] == [{'serial_number': OLD, 'valid_to': '2026-12-01T00:00:00+00:00', 'revoked': True}]
    assert 'would renew serial %s with a new key and certificate, because the certificate expires within 30 days' % OLD in renew['message']
    assert renew['message'].endswith('; would prove the new certificate through the host and revoke serial %s' % OLD)
    enroll = FILTERS['ksef_deploy_account'](prepared('b'), decided['hosts']['b'], {}, {}, True, 'b')[0]
    assert 'would enroll a new key and certificate, because no readable certificate' in enroll['message']


def test_a_missing_key_is_reported_as_missing():
    decided = _deploy_account.batch({'a': prepared('a', key_exists=False)}, INFO, NOW)
    assert decided['hosts']['a']['plan'][0]['reason'] == 'the private key /k/a-authentication.key is missing'


def enrolled(action='enrolled', revoked=True, pem='PEM'):
    return {'certificates': [{'name': 'a-authentication', 'type': 'authentication', 'action': action,
                              'certificate_pem': pem, 'certificate': {'serial_number': NEW, 'valid_to': 'new'},
                              'superseded': [{'serial_number': OLD, 'valid_to': 'old', 'revoked': revoked}]}]}


def test_a_renewal_names_the_superseded_serial_and_whether_it_was_revoked():
    renewing = prepared('a', renewal_due=True)
    decided = _deploy_account.batch({'a': renewing}, INFO, NOW)
    line = FILTERS['ksef_deploy_account'](renewing, decided['hosts']['a'], enrolled(revoked=False), {}, False, 'a')[0]
    assert (line['action'], line['serial_number'], line['previous_serial_number']) == ('renewed', NEW, OLD)
    assert line['superseded'] == [{'serial_number': OLD, 'valid_to': 'old', 'revoked': False}]
    assert 'renewed; serial %s, valid until new; superseded %s left active' % (NEW, OLD) in line['message']


def test_a_certificate_that_did_not_come_back_fails_its_host_only():
    renewing = prepared('a', renewal_due=True)
    decided = _deploy_account.batch({'a': renewing, 'b': prepared('b')}, INFO, NOW)
    failed_call = dict(enrolled(pem=''), failed=True, msg='GET /certificates/enrollments/R: HTTP 400')
    line = FILTERS['ksef_deploy_account'](renewing, decided['hosts']['a'], failed_call, {}, False, 'a')[0]
    assert line['failed'] and 'GET /certificates/enrollments/R: HTTP 400' in line['failure']
    assert 'the key /k/a-authentication.key.next is kept' in line['failure']
    other = FILTERS['ksef_deploy_account'](prepared('b'), decided['hosts']['b'], failed_call, {}, False, 'b')[0]
    assert not other['failed'] and other['action'] == 'unchanged'


def test_controller_side_lines():
    shared_decl = [{'type': 'offline', 'name': 'shared one', 'key_location': 'controller'}]
    host = prepared('a', shared_decl)
    decided = _deploy_account.batch({'a': host}, None, NOW)
    assert decided['controller'] == 1
    first_check = FILTERS['ksef_deploy_account'](host, decided['hosts']['a'], {}, {}, True, 'a')[0]
    assert first_check['action'] == 'enrolled' and first_check['changed']
    assert 'would enroll a new key and certificate, because the controller directory /c does not exist yet' in first_check['message']
    shared = {'certificates': [{'name': 'shared one', 'type': 'offline', 'action': 'renewed', 'reason': 'due',
                                'certificate': None, 'superseded': [{'serial_number': OLD, 'revoked': False}]}]}
    renew = FILTERS['ksef_deploy_account'](host, decided['hosts']['a'], {}, shared, True, 'a')[0]
    assert 'would renew serial %s and copy the new key and certificate from the controller' % OLD in renew['message']
    assert renew['message'].endswith('would keep active the superseded serial %s' % OLD)
    failed = FILTERS['ksef_deploy_account'](host, decided['hosts']['a'], {}, {'failed': True, 'msg': 'boom'}, False, 'a')[0]
    assert failed['failed'] and failed['failure'].endswith('could not be converged: boom')
    # The role registers the call with failed_when: false, which resets `failed`: the refusal still fails the host.
    refused = {'failed': False, 'failed_when_result': False, 'msg': 'the private key /c/k does not exist, but KSeF still lists'}
    for check_mode in (False, True):
        line = FILTERS['ksef_deploy_account'](host, decided['hosts']['a'], {}, refused, check_mode, 'a')[0]
        assert line['failed'] and line['failure'].endswith('could not be converged: ' + refused['msg'])
    # A failed call still lists the item (action none, no certificate): it failed all the same.
    listed = dict(refused, certificates=[{'name': 'shared one', 'type': 'offline', 'action': 'none', 'certificate': None}])
    line = FILTERS['ksef_deploy_account'](host, decided['hosts']['a'], {}, listed, False, 'a')[0]
    assert line['failed'] and line['failure'].endswith('could not be converged: ' + refused['msg'])
    skipped = FILTERS['ksef_deploy_account'](host, decided['hosts']['a'], {}, {'skipped': True}, True, 'a')[0]
    assert skipped['action'] == 'enrolled' and not skipped['failed']


def test_host_diff_passes_the_module_diff_through_or_says_the_serials():
    lines = [{'name': 'a-authentication', 'type': 'authentication', 'changed': True, 'key_path': '/k', 'certificate_path': '/p',
              'previous_serial_number': OLD, 'serial_number': ''},
             {'name': 'x', 'type': 'offline', 'changed': False}]
    assert _deploy_account.host_diff(lines, [{}, {}]) == {
        'before': {'certificates': [{'name': 'a-authentication', 'type': 'authentication', 'private_key_path': '/k',
                                     'certificate_path': '/p', 'serial_number': OLD}]},
        'after': {'certificates': [{'name': 'a-authentication', 'type': 'authentication', 'private_key_path': '/k',
                                    'certificate_path': '/p', 'serial_number': '(new)'}]}}
    module = {'before': {'certificates': [{'name': 'a-authentication', 'type': 'authentication', 'serial_number': None,
                                           'private_key_path': None, 'status': None},
                                          {'name': 'other', 'type': 'authentication', 'serial_number': 'Z'}]},
              'after': {'certificates': [{'name': 'a-authentication', 'type': 'authentication', 'serial_number': NEW,
                                          'private_key_path': None, 'status': 'active'},
                                         {'name': 'other', 'type': 'authentication', 'serial_number': 'Y'}]}}
    paths = {'private_key_path': '/k', 'certificate_path': '/p'}
    assert _deploy_account.host_diff(lines, [module]) == {
        'before': {'certificates': [dict(module['before']['certificates'][0], serial_number=OLD, **paths)]},
        'after': {'certificates': [dict(module['after']['certificates'][0], **paths)]}}
    assert _deploy_account.host_diff(lines[1:], [module]) is None


def test_summary_is_every_message_in_order():
    assert FILTERS['ksef_deploy_summary']([[{'message': 'a1'}, {'message': 'a2'}], [], [{'message': 'b1'}]]) == ['a1', 'a2', 'b1']


def held(state, retry_at='2026-06-20T00:00:00+00:00', outage_at='2026-06-25T00:00:00+00:00'):
    """ksef_certificate's answer for a due renewal it did not send (its `hold`), as for a key-on-host CSR."""
    return {'certificates': [{'name': 'a-authentication', 'type': 'authentication', 'action': state, 'reason': 'key_mismatch',
                              'certificate_pem': None, 'certificate': None, 'superseded': [],
                              'hold': {'state': state, 'reason': 'certificate_quota', 'outage_at': outage_at,
                                       'retry_at': retry_at, 'message': 'waits for a free slot: ...; a run from %s can '
                                       'renew it; the certificate in use works until %s' % (retry_at, outage_at)}}]}


def test_a_renewal_held_within_the_limits_is_reported_not_failed():
    renewing = prepared('a', renewal_due=True)
    decided = _deploy_account.batch({'a': renewing}, INFO, NOW)
    for state in ('deferred', 'blocked'):
        line = FILTERS['ksef_deploy_account'](renewing, decided['hosts']['a'], held(state), {}, False, 'a')[0]
        assert (line['action'], line['changed'], line['failed'], line['failure']) == (state, False, False, '')
        assert (line['serial_number'], line['valid_to']) == (OLD, '2026-12-01T00:00:00+00:00')
        assert line['outage_at'] == '2026-06-25T00:00:00+00:00' and line['retry_at'] == '2026-06-20T00:00:00+00:00'
        assert line['reason'].startswith('the certificate expires within 30 days; waits for a free slot')
        assert line['message'].startswith('a: a-authentication (authentication, key on host): %s, serial %s stays in use '
                                          '(valid until 2026-12-01T00:00:00+00:00): the certificate expires' % (state, OLD))
        assert line['message'].endswith('; the new key /k/a-authentication.key.next is kept for that run')
    # no valid certificate any more: an outage, which fails the host with the reason
    outage = held('blocked', retry_at=None, outage_at=None)
    line = FILTERS['ksef_deploy_account'](renewing, decided['hosts']['a'], dict(outage, msg='Cannot enroll 1'), {}, False, 'a')[0]
    assert line['failed'] and 'waits for a free slot' in line['failure'] and 'key.next is kept' in line['failure']
    # every line carries the two dates, empty when nothing is held
    healthy = FILTERS['ksef_deploy_account'](prepared('b'), _deploy_account.batch({'b': prepared('b')}, INFO, NOW)['hosts']['b'])[0]
    assert (healthy['outage_at'], healthy['retry_at']) == ('', '')


def test_a_held_controller_side_renewal_keeps_its_certificate_and_says_until_when():
    host = prepared('a', [{'type': 'offline', 'name': 'shared one', 'key_location': 'controller'}])
    decided = _deploy_account.batch({'a': host}, None, NOW)
    shared = held('deferred')
    shared['certificates'][0].update(name='shared one', type='offline', reason='renewal_window',
                                     certificate={'serial_number': OLD, 'valid_to': '2026-06-25T00:00:00+00:00'})
    line = FILTERS['ksef_deploy_account'](host, decided['hosts']['a'], {}, shared, False, 'a')[0]
    assert (line['action'], line['changed'], line['failed'], line['serial_number']) == ('deferred', False, False, OLD)
    assert line['reason'].startswith('renewal_window; waits for a free slot') and line['retry_at'] == '2026-06-20T00:00:00+00:00'
    assert 'deferred, serial %s stays in use (valid until 2026-06-25T00:00:00+00:00)' % OLD in line['message']
    assert 'kept for that run' not in line['message']


def test_a_controller_side_revocation_of_a_kept_predecessor_changes_the_host():
    host = prepared('a', [{'type': 'authentication', 'name': 'shared one', 'key_location': 'controller'}])
    decided = _deploy_account.batch({'a': host}, None, NOW)
    shared = {'certificates': [{'name': 'shared one', 'type': 'authentication', 'action': 'revoked', 'reason': 'proven',
                                'certificate': {'serial_number': NEW, 'valid_to': 'new'},
                                'superseded': [{'serial_number': OLD, 'valid_to': 'old', 'revoked': True}]}]}
    line = FILTERS['ksef_deploy_account'](host, decided['hosts']['a'], {}, shared, False, 'a')[0]
    assert (line['action'], line['changed'], line['failed']) == ('revoked', True, False)
    assert 'superseded %s revoked' % OLD in line['message']


def real_hostvars(per_host):
    """Ansible's own hostvars (HostVars over a VariableManager), with the given facts per host."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.hostvars import HostVars
    from ansible.vars.manager import VariableManager
    loader = DataLoader()
    inventory = InventoryManager(loader=loader)
    manager = VariableManager(loader=loader, inventory=inventory)
    for host, facts in per_host.items():
        inventory.add_host(host)
        manager.set_nonpersistent_facts(host, facts)
    return HostVars(inventory=inventory, variable_manager=manager, loader=loader)


def test_batch_values_reads_one_variable_of_every_host_in_batch_order():
    hostvars = real_hostvars({'app1': {'_ksef_deploy_prepared': {'declarations': [1]}}, 'app2': {},
                              'app3': {'_ksef_deploy_prepared': {'declarations': [3]}, 'other': 'x'}})
    batch_values = FILTERS['ksef_deploy_batch_values']
    # app2 never registered it (skipped, or failed before): left out, the others keep the batch's order.
    assert batch_values(['app3', 'app2', 'app1'], hostvars, '_ksef_deploy_prepared') == [
        {'declarations': [3]}, {'declarations': [1]}]
    assert batch_values(['app1', 'app2', 'app3'], hostvars, '_ksef_deploy_prepared', by_host=True) == {
        'app1': {'declarations': [1]}, 'app3': {'declarations': [3]}}
    assert batch_values(['app1'], hostvars, 'other') == []
    assert batch_values([], hostvars, '_ksef_deploy_prepared', by_host=True) == {}

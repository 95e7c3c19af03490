# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ksef_deploy role's decisions (plugin_utils/_deploy.py) and its filters, as tables."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.ksef.certificates.plugins.filter.ksef_deploy import FilterModule
from ansible_collections.ksef.certificates.plugins.plugin_utils import _deploy

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
FILTERS = FilterModule().filters()

SETTINGS = {
    'ksef_deploy_certificates': [],
    'ksef_deploy_key_location': 'host',
    'ksef_deploy_key_type': None,
    'ksef_deploy_controller_key_dir': '',
    'ksef_deploy_key_dir': '/etc/ksef/private',
    'ksef_deploy_certificate_dir': '/etc/ksef/certs',
    'ksef_deploy_owner': '',
    'ksef_deploy_group': '',
    'ksef_deploy_key_file_mode': '0600',
    'ksef_deploy_certificate_file_mode': '0644',
    'ksef_deploy_pkcs12_file_mode': '0600',
    'ksef_deploy_key_dir_mode': '0700',
    'ksef_deploy_certificate_dir_mode': '0755',
    'ksef_deploy_formats': ['pem'],
    'ksef_deploy_renew_before_days': None,
    'ksef_deploy_revoke_superseded': None,
}


def settings(certificates, **overrides):
    result = dict(SETTINGS, ksef_deploy_certificates=certificates)
    result.update(overrides)
    return result


def declared(certificates, host='app1.example.com', **overrides):
    return FILTERS['ksef_deploy_declarations'](settings(certificates, **overrides), host)


# --- declarations -----------------------------------------------------------------------------

def test_key_on_host_defaults_carry_the_host_name():
    item = declared([{'type': 'Authentication'}])[0]
    assert item['name'] == 'app1-example-com-authentication'
    assert item['id'] == 'app1-example-com-authentication|authentication'
    assert item['key_path'] == '/etc/ksef/private/app1-example-com-authentication.key'
    assert item['next_key_path'] == item['key_path'] + '.next'
    assert item['csr_path'] == item['key_path'] + '.next.csr'
    assert item['certificate_path'] == '/etc/ksef/certs/app1-example-com-authentication.crt'
    assert item['renew_before_days'] == 30 and item['revoke_superseded'] is True
    assert item['pkcs12'] is False and item['pkcs12_passphrase_set'] is False


def test_role_defaults_are_the_collection_rules():
    # The role's defaults are null: _rules decides, as for ksef_certificate (Offline predecessors stay Active).
    auth, offline = declared([{'type': 'authentication'}, {'type': 'offline'}])
    assert auth['key_type'] == 'ec' and auth['renew_before_days'] == 30
    assert auth['revoke_superseded'] is True and offline['revoke_superseded'] is False


def test_revoke_superseded_given_wins_over_the_type_rule():
    auth, offline = declared([{'type': 'authentication', 'revoke_superseded': False}, {'type': 'offline'}],
                             ksef_deploy_revoke_superseded='yes')
    assert auth['revoke_superseded'] is False and offline['revoke_superseded'] is True


def test_long_host_names_are_trimmed_to_the_ksef_limit():
    item = declared([{'type': 'offline'}], host='h' * 200)[0]
    assert len(item['name']) == 100 and item['name'].endswith('-offline')


def test_controller_side_files_and_slug_of_a_polish_name():
    item = declared([{'name': u'Wspólny offline', 'type': 'offline', 'key_location': 'controller',
                      'formats': ['pem', 'pkcs12'], 'pkcs12_passphrase': 's3cret', 'renew_before_days': '10',
                      'revoke_superseded': 'no'}], ksef_deploy_controller_key_dir='/ctl')[0]
    assert item['controller_key_path'] == '/ctl/Wspolny-offline.key'  # the name already ends with its type
    assert item['pkcs12_path'] == '/etc/ksef/private/Wspolny-offline.p12'
    assert item['pkcs12'] and item['pkcs12_passphrase'] == 's3cret' and item['pkcs12_passphrase_set']
    assert item['renew_before_days'] == 10 and item['revoke_superseded'] is False


def test_paths_are_kept_literally():
    hostile = 'd\'q"x $(touch M1) `touch M2` $HOME'
    item = declared([{'type': 'offline'}], ksef_deploy_key_dir='/t/' + hostile + '/private')[0]
    assert item['key_path'].startswith('/t/' + hostile + '/private/')


# --- problems: each names only the broken rule -------------------------------------------------

@pytest.mark.parametrize('certificate, words', [
    ({'type': 'seal'}, 'type must be authentication or offline'),
    ({'type': 'offline', 'key_type': 'dsa'}, 'key_type must be ec or rsa'),
    ({'type': 'offline', 'key_location': 'cloud', 'name': 'some name'}, 'key_location must be host or controller'),
    ({'type': 'offline', 'name': 'abc'}, 'is not accepted by KSeF'),
    ({'type': 'offline', 'name': 'valid name\n'}, 'is not accepted by KSeF'),
    ({'type': 'offline', 'formats': ['pem', 'der']}, "formats may only hold pem and pkcs12, not 'der'"),
    ({'type': 'offline', 'formats': ['pkcs12']}, 'the pkcs12 format needs pkcs12_passphrase'),
    ({'type': 'offline', 'formats': ['pkcs12'], 'pkcs12_passphrase': 'a\nb'}, 'control character'),
    ({'type': 'offline', 'key_location': 'controller', 'controller_key_dir': '/c'},
     'a controller-side certificate needs an explicit name'),
    ({'type': 'offline', 'key_location': 'controller', 'name': 'shared one'},
     'a controller-side key needs ksef_deploy_controller_key_dir'),
    ({'type': 'offline', 'renew_before_days': -1}, 'renew_before_days must be 0 or more'),
    ({'type': 'offline', 'key_path': '/etc/a\n.key'}, 'key_path contains the control character U+000A'),
])
def test_a_broken_rule_is_named_alone(certificate, words):
    found = FILTERS['ksef_deploy_problems'](declared([certificate]), 'app1')
    assert len(found) == 1, found
    assert words in found[0]
    assert found[0].startswith('Certificate declaration ')
    assert 'a\nb' not in found[0]  # a passphrase is never quoted


def test_valid_declarations_have_no_problem():
    items = declared([{'type': 'authentication'}, {'type': 'offline', 'formats': ['pem', 'pkcs12'],
                                                   'pkcs12_passphrase': u'$(touch M3) "\' \\ $'}])
    assert FILTERS['ksef_deploy_problems'](items, 'app1') == []


# A value of a wrong type named in one short line (Ansible's validation of the role's argument spec printed the
# whole spec instead): the variable, the entry and what it expects, never the value itself (a passphrase).
@pytest.mark.parametrize('overrides, expected', [
    ({'ksef_deploy_certificates': 'a string'},
     ['ksef_deploy_certificates on app1 must be a list of certificate entries (dicts with name, type, ...), not a string']),
    ({'ksef_deploy_certificates': {'type': 'offline'}},
     ['ksef_deploy_certificates on app1 must be a list of certificate entries (dicts with name, type, ...), not a dict']),
    ({'ksef_deploy_certificates': ['offline']},
     ['Certificate entry 1 of ksef_deploy_certificates on app1 must be a dict (name, type, ...), not a string']),
    ({'ksef_deploy_certificates': [{'type': ['offline']}]},
     ['Certificate entry 1 of ksef_deploy_certificates on app1: type must be a string (authentication or offline), not a list']),
    ({'ksef_deploy_certificates': [{'name': 'Kasa 1', 'type': 'offline', 'renew_before_days': 'soon', 'revoke_superseded': 'maybe',
                                    'formats': 'pem', 'key_path': {'a': 1}, 'pkcs12_passphrase': ['secret words']}]},
     ['Certificate entry 1 of ksef_deploy_certificates on app1 ("Kasa 1"): renew_before_days must be a whole number of days, '
      'not a string',
      'Certificate entry 1 of ksef_deploy_certificates on app1 ("Kasa 1"): revoke_superseded must be true or false, not a string',
      'Certificate entry 1 of ksef_deploy_certificates on app1 ("Kasa 1"): formats must be a list of formats (pem, pkcs12), '
      'not a string',
      'Certificate entry 1 of ksef_deploy_certificates on app1 ("Kasa 1"): key_path must be a string, not a dict',
      'Certificate entry 1 of ksef_deploy_certificates on app1 ("Kasa 1"): pkcs12_passphrase must be a string, not a list']),
    ({'ksef_deploy_renew_before_days': [30], 'ksef_deploy_revoke_superseded': 2, 'ksef_deploy_formats': {'pem': 1},
      'ksef_deploy_key_location': ['host'], 'ksef_deploy_enrollment_wait_timeout': 'long', 'ksef_deploy_replace_missing_keys': 'maybe',
      'ksef_deploy_backend': 'fast'},
     ['ksef_deploy_key_location on app1 must be a string (host or controller), not a list',
      'ksef_deploy_enrollment_wait_timeout on app1 must be a whole number of seconds, not a string',
      'ksef_deploy_replace_missing_keys on app1 must be true or false, not a string',
      "ksef_deploy_backend on app1 must be auto, cryptography or openssl, not 'fast'",
      'ksef_deploy_formats on app1 must be a list of formats (pem, pkcs12), not a dict',
      'ksef_deploy_renew_before_days on app1 must be a whole number of days, not a list',
      'ksef_deploy_revoke_superseded on app1 must be true or false, not a number']),
])
def test_a_value_of_a_wrong_type_is_named_in_one_short_line(overrides, expected):
    wrong = settings([], **overrides)
    assert _deploy.setting_problems(wrong, 'app1') == expected
    assert _deploy.checked_declarations(wrong, 'app1')[1] == expected
    with pytest.raises(AnsibleFilterError) as raised:
        FILTERS['ksef_deploy_declarations'](wrong, 'app1')
    assert str(raised.value) == '; '.join(expected)
    assert 'secret words' not in str(raised.value)


def test_values_ansible_converts_keep_working():
    """What the argument spec converted before (a number of days or a boolean as text, from -e) is still accepted."""
    item = declared([{'type': 'offline', 'renew_before_days': '45', 'revoke_superseded': 'yes', 'owner': 1000}],
                    ksef_deploy_renew_before_days='10', ksef_deploy_revoke_superseded='no', ksef_deploy_enrollment_wait_timeout='600',
                    ksef_deploy_replace_missing_keys='true', ksef_deploy_backend='openssl')[0]
    assert item['renew_before_days'] == 45 and item['revoke_superseded'] is True and item['owner'] == 1000
    assert _deploy.setting_problems(settings(None), 'app1') == []


def test_one_run_names_the_wrong_types_and_the_broken_rules_of_the_other_entries():
    items, found = _deploy.checked_declarations(settings([{'type': 'bogus'}, {'type': ['offline']}, {'type': 'offline'}]), 'app1')
    assert [item['type'] for item in items] == ['bogus', 'offline']
    assert found == ['Certificate entry 2 of ksef_deploy_certificates on app1: type must be a string (authentication or offline), '
                     'not a list',
                     'Certificate declaration "app1-bogus" (bogus) on app1: type must be authentication or offline, not \'bogus\'']
    # A host-level value of a wrong type leaves nothing to resolve.
    assert _deploy.checked_declarations(settings([{'type': 'bogus'}], ksef_deploy_formats='pem'), 'app1') == (
        [], ['ksef_deploy_formats on app1 must be a list of formats (pem, pkcs12), not a string'])


def test_duplicates_on_one_host_and_across_hosts():
    items = declared([{'type': 'offline', 'name': 'same name'}, {'type': 'offline', 'name': 'same name'}])
    assert FILTERS['ksef_deploy_problems'](items, 'app1') == [
        'app1 declares two certificates with the same name and type: same name|offline',
        'app1 declares two certificates with the same key_path: /etc/ksef/private/same-name-offline.key',
        'app1 declares two certificates with the same certificate_path: /etc/ksef/certs/same-name-offline.crt']
    both = declared([{'type': 'offline', 'name': 'same name'}], host='a') + declared(
        [{'type': 'offline', 'name': 'same name'}, {'type': 'authentication', 'name': 'shared one', 'key_location': 'controller'}],
        host='b', ksef_deploy_controller_key_dir='/c') + declared([{'type': 'authentication', 'name': 'shared one'}], host='c')
    found = FILTERS['ksef_deploy_batch_problems'](both)
    assert len(found) == 2
    assert 'same name|offline' in found[0] and 'shared one|authentication' in found[1]


# --- directories ------------------------------------------------------------------------------

def test_directories_certificates_first_and_key_directories_win():
    items = declared([{'type': 'offline', 'formats': ['pem', 'pkcs12'], 'pkcs12_passphrase': 'x',
                       'pkcs12_path': '/b/bundles/x.p12', 'key_dir_mode': '0750'},
                      {'type': 'authentication', 'certificate_path': '/etc/ksef/private/a.crt'}])
    assert FILTERS['ksef_deploy_directories'](items) == [
        {'path': '/etc/ksef/certs', 'mode': '0755', 'group': ''},
        {'path': '/etc/ksef/private', 'mode': '0750', 'group': ''},
        {'path': '/b/bundles', 'mode': '0750', 'group': ''},
    ]


def test_directories_are_never_given_the_owner_of_the_files():
    """issue 17, finding 1: an owner of the key directory could swap the files in it for links."""
    items = declared([{'type': 'offline', 'owner': 'appuser', 'group': 'app'}])
    found = FILTERS['ksef_deploy_directories'](items)
    assert found and all('owner' not in entry and entry['group'] == 'app' for entry in found)


# --- plan -------------------------------------------------------------------------------------

SERIAL = '00000000000000AB'
HEALTHY = dict(key_exists=True, next_key_exists=False, certificate_exists=True, certificate_parsed=True,
               certificate_matches_key=True, certificate_matches_next_key=False, serial_number=SERIAL,
               valid_to='2026-12-01T00:00:00+00:00', fingerprint_sha256='ab' * 32, renewal_due=False)


def inspection(item, **changes):
    return dict(HEALTHY, item=item, **changes)


def info(valid_to='2026-12-01T00:00:00Z', serial=SERIAL):
    return {'certificates': [{'serial_number': serial, 'valid_to': valid_to}]}


ITEM = declared([{'type': 'authentication'}])[0]


@pytest.mark.parametrize('changes, ksef, action, reason', [
    ({}, info(), 'keep', 'valid until 2026-12-01T00:00:00Z'),
    ({'next_key_exists': True, 'certificate_matches_next_key': True, 'certificate_matches_key': False}, info(),
     'install', 'the new key and its certificate are not installed yet'),
    ({'certificate_parsed': False}, info(), 'enroll', 'no readable certificate'),
    ({'key_exists': False}, info(), 'enroll', 'the private key /etc/ksef/private/app1-example-com-authentication.key is missing'),
    ({'certificate_matches_key': False}, info(), 'enroll', 'the certificate does not match the private key'),
    ({'renewal_due': True}, info(), 'enroll', 'the certificate expires within 30 days'),
    ({}, {'certificates': []}, 'enroll', 'certificate 00000000000000AB is not active in KSeF (revoked, blocked or expired)'),
    # KSeF shortened the certificate: 30 days left is inside a 30-day window (_rules.renewal_due), 30 days and
    # a second is not.
    ({}, info('2026-07-01T12:00:00Z'), 'enroll', 'KSeF says certificate 00000000000000AB expires within 30 days'),
    ({}, info('2026-07-01T12:00:01Z'), 'keep', 'valid until 2026-07-01T12:00:01Z'),
])
def test_plan_table(changes, ksef, action, reason):
    planned = FILTERS['ksef_deploy_plan']([inspection(ITEM, **changes)], ksef, now=NOW)
    assert [(entry['action'], entry['reason']) for entry in planned] == [(action, reason)]


def test_plan_uses_the_declared_window_and_ksefs_end_of_validity():
    item = dict(ITEM, renew_before_days=5)
    planned = FILTERS['ksef_deploy_plan']([inspection(item)], info('2026-06-10T00:00:00Z'), now=NOW)[0]
    assert planned['action'] == 'keep' and planned['valid_to'] == '2026-06-10T00:00:00Z'
    assert planned['probe']['serial_number'] == SERIAL
    skipped = FILTERS['ksef_deploy_plan']([inspection(item)], {'skipped': True}, now=NOW)[0]
    assert skipped['action'] == 'enroll' and skipped['valid_to'] == HEALTHY['valid_to']


def test_plan_says_when_renew_before_days_reaches_the_lifetime_ksef_lists():
    listed = {'certificates': [{'serial_number': SERIAL, 'valid_from': '2026-01-01T00:00:00Z', 'valid_to': '2026-12-01T00:00:00Z'}]}
    item = dict(ITEM, renew_before_days=334)   # the lifetime: 2026-01-01 .. 2026-12-01 is 334 days
    planned = FILTERS['ksef_deploy_plan']([inspection(item)], listed, now=NOW)[0]
    assert planned['action'] == 'enroll'
    assert planned['reason'] == ('KSeF says certificate 00000000000000AB expires within 334 days (renew_before_days 334 is '
                                 'at or above its lifetime of 334 days: every run renews it; choose fewer days)')
    item = dict(ITEM, renew_before_days=333)
    planned = FILTERS['ksef_deploy_plan']([inspection(item, renewal_due=True)], listed, now=NOW)[0]
    assert planned['reason'] == 'the certificate expires within 333 days'


# --- requests, installs, shared, result, removal ------------------------------------------------

def test_requests_from_the_csr_results():
    results = [{'item': ITEM, 'csr': '-----BEGIN CERTIFICATE REQUEST-----'}, {'item': ITEM, 'skipped': True}]
    # the role revokes after the proof; ksef_certificate plans its waves knowing the slots come back
    assert FILTERS['ksef_deploy_requests'](results) == [{
        'name': ITEM['name'], 'type': 'authentication', 'csr_content': '-----BEGIN CERTIFICATE REQUEST-----',
        'renew_before_days': 30, 'revoke_superseded': False, 'caller_revokes_superseded': True}]


@pytest.mark.parametrize('certificate, overrides, caller_revokes', [
    ({'type': 'authentication'}, {}, True),
    ({'type': 'offline'}, {}, False),                       # kept for its QR codes II: its slot stays taken
    ({'type': 'offline', 'revoke_superseded': True}, {}, True),
    ({'type': 'authentication'}, {'ksef_deploy_revoke_superseded': 'no'}, False),
])
def test_requests_say_whose_predecessors_the_role_revokes(certificate, overrides, caller_revokes):
    item = declared([certificate], **overrides)[0]
    request = FILTERS['ksef_deploy_requests']([{'item': item, 'csr': 'CSR'}])[0]
    assert (request['revoke_superseded'], request['caller_revokes_superseded']) == (False, caller_revokes)


def planned_entry(action, parsed=True):
    entry = dict(ITEM, action=action, reason='r', serial_number='OLD', valid_to='old', probe={'certificate_parsed': parsed})
    return entry


@pytest.mark.parametrize('action, parsed, ksef_action, expected', [
    ('enroll', True, 'enrolled', 'renewed'),
    ('enroll', False, 'enrolled', 'enrolled'),
    ('enroll', True, 'none', 'installed'),
    ('install', True, None, ''),
])
def test_installs_words(action, parsed, ksef_action, expected):
    enrolled = {'certificates': []}
    if ksef_action:
        enrolled['certificates'].append({'name': ITEM['name'], 'type': 'authentication', 'action': ksef_action,
                                         'certificate_pem': 'PEM', 'certificate': {'serial_number': 'NEW', 'valid_to': 'new'},
                                         'superseded': [{'serial_number': 'OLD'}]})
    installs = FILTERS['ksef_deploy_installs']([planned_entry(action, parsed), planned_entry('keep')], enrolled)
    assert len(installs) == 1
    assert installs[0]['ksef_action'] == expected
    assert installs[0]['serial_number'] == ('NEW' if ksef_action else 'OLD')
    assert installs[0]['certificate_pem'] == ('PEM' if ksef_action else '')


def test_shared_requests_one_per_name_and_type():
    common = {'name': 'shared one', 'type': 'offline', 'key_location': 'controller'}
    items = (declared([common], host='a', ksef_deploy_controller_key_dir='/c') +
             declared([dict(common, renew_before_days=7)], host='b', ksef_deploy_controller_key_dir='/c'))
    assert FILTERS['ksef_deploy_shared_requests'](items) == [{
        'name': 'shared one', 'type': 'offline', 'private_key_path': '/c/shared-one-offline.key', 'private_key_type': 'ec',
        'certificate_path': '/c/shared-one-offline.crt', 'renew_before_days': 30, 'revoke_superseded': False}]


def test_result_lines():
    shared_item = declared([{'name': 'shared one', 'type': 'offline', 'key_location': 'controller'}],
                           ksef_deploy_controller_key_dir='/c')[0]
    items = [ITEM, shared_item, declared([{'type': 'offline'}])[0]]
    shared = {'certificates': [{'name': 'shared one', 'type': 'offline', 'action': 'none',
                                'certificate': {'serial_number': 'S', 'valid_to': 'V'}}]}
    lines = FILTERS['ksef_deploy_result'](items, [dict(ITEM, action='keep', reason='valid', serial_number='A', valid_to='B')],
                                          [], shared)
    assert [(line['action'], line['serial_number']) for line in lines] == [('unchanged', 'A'), ('unchanged', 'S'), ('unknown', '')]
    assert set(lines[0]) == {'name', 'type', 'key_location', 'action', 'reason', 'serial_number', 'valid_to', 'key_path',
                             'certificate_path', 'pkcs12_path'}


def test_remove_selection_by_id_or_serial():
    other = declared([{'type': 'offline'}])[0]
    inspections = [dict(HEALTHY, item=ITEM), dict(HEALTHY, item=other, serial_number='00000000000000CD')]
    select = FILTERS['ksef_deploy_remove_selection']
    assert select(inspections, [ITEM['id']], []) == [ITEM]
    assert select(inspections, [], ['cd']) == [other]
    assert select(inspections, [ITEM['id']], ['AB']) == [ITEM]
    assert select(inspections, [], []) == []


def test_bad_input_is_a_filter_error_naming_the_filter():
    with pytest.raises(AnsibleFilterError, match='ksef_deploy_plan: unexpected input'):
        FILTERS['ksef_deploy_plan']([{'no item': True}], {})


def test_the_id_of_a_declaration_is_built_by_one_function():
    # The revoke playbook builds its ids with the filter, the declarations with the same function.
    item = declared([{'type': 'offline', 'name': 'erp-offline'}])[0]
    assert FILTERS['ksef_deploy_id']('erp-offline', 'offline') == item['id'] == 'erp-offline|offline'
    assert _deploy.deploy_label(item['id']) == 'erp-offline (offline)'

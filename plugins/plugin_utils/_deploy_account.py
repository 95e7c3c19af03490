# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This plugin_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""The ksef_deploy role at fleet scale: the decisions for a whole play batch at once, and the account of each host.

- batch(): from what each host's one ksef_deploy_host call (operation=prepare) found and the one query of the
  subject's active certificates, the plan of every host of the batch (plugin_utils/_deploy.plan), and what
  fails where: a key-on-host name declared by several hosts fails on each of them and lists them; a query that
  failed fails every host that needed it, each with the reason;
- account(): ksef_deploy_result, one line per declared certificate with its serial, action, each superseded
  serial with `revoked`, valid until, whether it changed or failed, and the sentence the role prints (in check
  mode: what it would do);
- summary(): those sentences for the whole batch, printed once by the controller;
- host_diff(): the before/after of this host's certificates for diff mode (the module's, passed through);
- batch_values(): one variable of every host of the batch, read across hosts (the role's only hostvars lookup).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.ksef.certificates.plugins.module_utils import _rules
from ansible_collections.ksef.certificates.plugins.plugin_utils import _deploy, _deploy_proof, _deploy_waves

# rotated: a later run proved a deployed successor and revoked the predecessors an earlier run had to leave.
_DONE = ('enrolled', 'renewed', 'installed', 'rotated')
# A due renewal that ksef_certificate held within KSeF's limits (its `hold`): the certificate in use stays.
_HELD = ('deferred', 'blocked')
_PROOF_WORDS = {'login': 'a login', 'qr_code_ii': 'a QR code II'}


def batch_values(hosts, hostvars, name, by_host=False):
    """The value of the variable `name` of each host of `hosts` (ansible_play_batch), in that order.

    A host without the variable (its step was skipped, or it failed before it) is left out. by_host: a dict
    host -> value instead of the list.
    """
    found = [(host, hostvars[host][name]) for host in hosts if name in hostvars[host]]
    return dict(found) if by_host else [value for dummy, value in found]


def _ids_by_host(prepared, location):
    found = {}
    for host, result in prepared.items():
        for item in result.get('declarations') or []:
            if item['key_location'] == location:
                found.setdefault(item['id'], []).append(host)
    return found


def batch(prepared, info, now=None):
    """{hosts: {host: {plan, failures}}, counts of enroll/install/prove/controller/pkcs12 items in the batch}.

    prepared: {host: the registered result of ksef_deploy_host operation=prepare with settings};
    info: the registered ksef_certificate_info result (skipped when no host keeps its key).
    """
    host_ids = _ids_by_host(prepared, 'host')
    controller_ids = _ids_by_host(prepared, 'controller')
    clashes = {}
    for item_id, hosts in host_ids.items():
        if len(hosts) > 1:
            clashes[item_id] = ('A key-on-host certificate must have its own name on each host (the default name '
                                'includes the host name): %s is declared by %s' % (_deploy.deploy_label(item_id), ', '.join(sorted(hosts))))
        elif item_id in controller_ids:
            owners = ', '.join(sorted(controller_ids[item_id]))
            clashes[item_id] = ('A key-on-host certificate must not reuse the name and type of a controller-side '
                                'certificate: %s is key-on-controller on %s' % (_deploy.deploy_label(item_id), owners))
    info = info or {}
    info_failure = ''
    if info.get('failed'):
        info_failure = "Cannot read the subject's certificates in KSeF: %s" % (info.get('msg') or 'unknown error')
    hosts = {}
    counts = {'enroll': 0, 'install': 0, 'prove': 0, 'controller': 0, 'pkcs12': 0}
    for host, result in prepared.items():
        failures = {}
        usable = []
        for inspection in result.get('inspections') or []:
            item_id = inspection['item']['id']
            if item_id in clashes:
                failures[item_id] = clashes[item_id]
            elif info_failure:
                failures[item_id] = info_failure
            else:
                usable.append(inspection)
        plan = _deploy.plan(usable, info, now)
        for entry in plan:
            if entry['action'] in counts:
                counts[entry['action']] += 1
        for item in result.get('declarations') or []:
            counts['controller'] += item['key_location'] == 'controller'
            counts['pkcs12'] += bool(item['pkcs12'])
        hosts[host] = {'plan': plan, 'failures': failures}
    return dict(counts, hosts=hosts)


def _superseded(entries):
    return [{'serial_number': entry.get('serial_number') or '', 'valid_to': entry.get('valid_to') or '',
             'revoked': bool(entry.get('revoked'))} for entry in entries or []]


def _by_id(module_result):
    return dict((_deploy.deploy_id(cert['name'], cert['type']), cert) for cert in (module_result or {}).get('certificates') or [])


def _proven(line, host, item, older, proofs, check_mode):
    """Each superseded serial of a key-on-host certificate with `revoked` and the successor's proof (_deploy_proof)."""
    line['superseded'], line['proof'] = _deploy_proof.outcome(host, item, older, proofs, check_mode)
    return line


def _host_line(item, entry, issued, enrolled, check_mode, host, proofs):
    """action, reason, serial, valid_to, previous serial, superseded, proof, failure of a key-on-host certificate."""
    previous = entry['probe'].get('serial_number') or ''
    line = {'action': 'unchanged', 'reason': entry['reason'], 'serial_number': previous, 'proof': None,
            'valid_to': entry['valid_to'], 'previous_serial_number': previous, 'superseded': [], 'failure': ''}
    if entry['action'] == 'keep':
        return line
    if entry['action'] == 'prove':
        _proven(line, host, item, entry['predecessors'], proofs, check_mode)
        if any(old['revoked'] for old in line['superseded']):
            line['action'] = 'rotated'
        return line
    if entry['action'] == 'install':
        line['action'] = 'installed'
        return _proven(line, host, item, entry.get('predecessors') or [], proofs, check_mode)
    line['action'] = 'renewed' if entry['probe'].get('certificate_parsed') and previous else 'enrolled'
    if check_mode:
        line['serial_number'], line['valid_to'] = '', ''
        if line['action'] == 'renewed':
            line['superseded'] = [{'serial_number': previous, 'valid_to': entry['valid_to'],
                                   'revoked': _rules.revoke_superseded(item['type'], item.get('revoke_superseded'))}]
        return line
    result = issued.get(item['id'])
    if result and result.get('action') == 'pending' and (result.get('proof') or {}).get('valid_from'):
        # Issued, but valid only later: not installed, nothing proven, the predecessor stays (with the date).
        certificate = result.get('certificate') or {}
        line.update(action='pending', reason='%s; the first run after that installs it, proves it and revokes %s'
                    % (result['proof']['reason'], previous or 'the predecessor'),
                    serial_number=certificate.get('serial_number', ''), valid_to=certificate.get('valid_to', ''),
                    proof=result['proof'], changed=bool(result.get('changed')),
                    superseded=[dict(old, revoked=False) for old in _superseded(result.get('superseded'))
                                if old['serial_number'] != certificate.get('serial_number')])
        return line
    hold = (result or {}).get('hold')
    if hold and hold.get('state') in _HELD and hold.get('outage_at'):
        # Held while its certificate still works: not a failure; the .next key and CSR wait for the run that sends it.
        line.update(action=hold['state'], reason='%s; %s' % (entry['reason'], hold.get('message') or hold['state']),
                    outage_at=hold['outage_at'], retry_at=hold.get('retry_at') or '')
        return line
    if not result or not result.get('certificate_pem'):
        why = (hold or {}).get('message') or (enrolled or {}).get('msg') or 'no certificate came back for its CSR'
        line['failure'] = ('KSeF returned no certificate for %s (%s): %s; rerun to resume, the key %s is kept'
                           % (item['name'], item['type'], why, item['next_key_path']))
        line['action'] = 'failed'
        return line
    if result.get('action') == 'none':
        line['action'] = 'installed'
    certificate = result.get('certificate') or {}
    line.update(serial_number=certificate.get('serial_number', ''), valid_to=certificate.get('valid_to', ''))
    # ksef_certificate revoked none of them (the key is here, not on the controller): the proof decides.
    return _proven(line, host, item, _deploy_proof.superseded_by(entry, result, line['serial_number']), proofs, check_mode)


def _controller_line(item, result, shared, check_mode):
    """The same for a controller-side certificate, from the batch's ksef_certificate call."""
    line = {'action': 'unchanged', 'reason': '', 'serial_number': '', 'valid_to': '', 'previous_serial_number': '',
            'superseded': [], 'proof': None, 'failure': ''}
    # The task registers with failed_when: false, which resets `failed`: a call that ran and has a msg failed (a
    # successful ksef_certificate returns none). Its certificates list then still names every item, without a
    # certificate where the item was not converged.
    ran = bool(shared) and not shared.get('skipped')
    failed_call = ran and ('msg' in shared or bool(shared.get('failed')))
    if result is None or (failed_call and not (result.get('certificate') or {}).get('serial_number')):
        if check_mode and not ran:
            line.update(action='enrolled', reason='the controller directory %s does not exist yet'
                        % item['controller_key_dir'])
            return line
        line.update(action='failed', failure='The controller-side certificate %s (%s) could not be converged: %s'
                    % (item['name'], item['type'], (shared or {}).get('msg') or 'ksef_certificate returned nothing for it'))
        return line
    certificate = result.get('certificate') or {}
    superseded = _superseded(result.get('superseded'))
    action = result.get('action') or 'unknown'
    hold = result.get('hold') or {}
    if action in _HELD:
        line.update(outage_at=hold.get('outage_at') or '', retry_at=hold.get('retry_at') or '')
    line.update(action='unchanged' if action == 'none' else action,
                reason='; '.join(text for text in (result.get('reason'), hold.get('message')) if text),
                serial_number=certificate.get('serial_number', ''), valid_to=certificate.get('valid_to', ''),
                superseded=superseded, proof=result.get('proof'),
                previous_serial_number=superseded[0]['serial_number'] if superseded else certificate.get('serial_number', ''))
    return line


def _sentence(host, item, line, check_mode):
    where = '%s: %s (%s, key on %s)' % (host, item['name'], item['type'], item['key_location'])
    action, reason = line['action'], line['reason']
    because = ', because %s' % reason if reason else ''
    if action == 'failed':
        return '%s: FAILED: %s' % (where, line['failure'])
    if action in _HELD:
        text = '%s: %s, serial %s stays in use (valid until %s): %s' % (
            where, action, line['serial_number'] or '-', line['valid_to'] or '-', reason)
        if item['key_location'] == 'host':
            text += '; the new key %s is kept for that run' % item['next_key_path']
        return text
    if check_mode and action in _DONE:
        if action == 'rotated':
            return '%s: would prove certificate %s through the host and revoke serial %s%s' % (
                where, line['serial_number'], ', '.join(old['serial_number'] for old in line['superseded']), because)
        if action == 'renewed':
            what = 'would renew serial %s with a new key and certificate' % line['previous_serial_number']
            if item['key_location'] == 'controller':
                what = 'would renew serial %s and copy the new key and certificate from the controller' % (
                    line['previous_serial_number'] or '-')
        elif action == 'installed':
            what = 'would install the new key and its certificate, serial %s' % (line['serial_number'] or '-')
        else:
            what = 'would enroll a new key and certificate'
        proves = 'prove the new certificate through the host and ' if item['key_location'] == 'host' else ''
        revoked = ''.join('; would %s serial %s' % (proves + 'revoke' if old['revoked'] else 'keep active the superseded',
                                                    old['serial_number']) for old in line['superseded'])
        return '%s: %s%s%s' % (where, what, because, revoked)
    text = '%s: %s; serial %s, valid until %s' % (where, action, line['serial_number'] or '-', line['valid_to'] or '-')
    proof = line.get('proof')
    if proof:
        text += ('; proven by %s' % _PROOF_WORDS.get(proof['method'], proof['method']) if proof['proven']
                 else '; not proven: %s' % proof['reason'])
    for old in line['superseded']:
        text += '; superseded %s %s' % (old['serial_number'], 'revoked' if old['revoked'] else 'left active')
    return text + '; ' + item['certificate_path']


def account(prepared, host_batch, enrolled=None, shared=None, check_mode=False, host='', proofs=None, waves=None):
    """ksef_deploy_result of one host: one line per declaration, in declaration order.

    proofs: {'finished': ksef_certificate_proof step=finish, 'revoked': ksef_certificate_revoke} of the batch (the
    first wave's). waves: {'later': [{ids, enrolled, proofs}] of the waves sent after the first (_deploy_waves),
    'left': the ids the bound left for the next run, 'max_waves', 'predicted': check mode's _deploy_waves.predict()}."""
    plan = dict((entry['id'], entry) for entry in (host_batch or {}).get('plan') or [])
    failures = (host_batch or {}).get('failures') or {}
    waves = waves or {}
    later, left = waves.get('later') or [], waves.get('left') or []
    enrolled = _deploy_waves.merged(enrolled, later)
    issued, shared_results = _by_id(enrolled), _by_id(shared)
    lines = []
    for item in (prepared or {}).get('declarations') or []:
        if item['id'] in failures:
            line = {'action': 'failed', 'reason': '', 'serial_number': '', 'valid_to': '', 'previous_serial_number': '',
                    'superseded': [], 'proof': None, 'failure': failures[item['id']]}
        elif item['key_location'] == 'host':
            line = _host_line(item, plan[item['id']], issued, enrolled, check_mode, host or item['host'],
                              _deploy_waves.proofs_of(item['id'], proofs, later))
            if item['id'] in left and line['action'] in _HELD:
                line = _deploy_waves.left_by_bound(line, plan[item['id']]['reason'], waves.get('max_waves') or 1)
            if check_mode and plan[item['id']]['action'] == 'enroll':
                line = _deploy_waves.predicted_line(line, plan[item['id']], (waves.get('predicted') or {}).get(item['id']),
                                                    waves.get('max_waves') or 1)
        else:
            line = _controller_line(item, shared_results.get(item['id']), shared, check_mode)
        line.setdefault('outage_at', '')
        line.setdefault('retry_at', '')
        line.update(name=item['name'], type=item['type'], key_location=item['key_location'],
                    key_path=item['key_path'], certificate_path=item['certificate_path'],
                    pkcs12_path=item['pkcs12_path'] if item['pkcs12'] else '',
                    # revoked: a predecessor an earlier run kept, revoked once its successor proved itself
                    changed=line.pop('changed') if 'changed' in line else line['action'] in _DONE + ('revoked',),
                    failed=line['action'] == 'failed', check_mode=bool(check_mode))
        line['message'] = _sentence(host or item['host'], item, line, check_mode)
        lines.append(line)
    return lines


def summary(results):
    """The sentences of every host's ksef_deploy_result, for the controller's one summary."""
    return [line['message'] for lines in results or [] for line in lines or []]


def host_diff(lines, diffs):
    """{before, after} of this host's changed certificates: the entries of the ksef_certificate diffs (list form)
    for their names and types, or serial numbers where no module diff is at hand (check mode); None without change."""
    module_entries = {}
    for diff in diffs or []:
        before = ((diff or {}).get('before') or {}).get('certificates') or []
        after = ((diff or {}).get('after') or {}).get('certificates') or []
        for old, new in zip(before, after):
            module_entries[_deploy.deploy_id(old.get('name'), old.get('type'))] = (old, new)
    before, after = [], []
    for line in lines or []:
        if not line.get('changed'):
            continue
        key = _deploy.deploy_id(line['name'], line['type'])
        if key in module_entries:
            # The module's entries, with what only the host knows: the paths there (a key-on-host certificate has
            # none on the controller) and the serial it replaced (the module enrolled for a new key).
            old, new = (dict(entry) for entry in module_entries[key])
            for entry in (old, new):
                if not entry.get('private_key_path'):
                    entry.update(private_key_path=line['key_path'], certificate_path=line['certificate_path'])
            if not old.get('serial_number') and line.get('previous_serial_number'):
                old['serial_number'] = line['previous_serial_number']
        else:
            common = {'name': line['name'], 'type': line['type'], 'private_key_path': line['key_path'],
                      'certificate_path': line['certificate_path']}
            old = dict(common, serial_number=line['previous_serial_number'] or None)
            new = dict(common, serial_number=line['serial_number'] or '(new)')
        before.append(old)
        after.append(new)
    if not before:
        return None
    return {'before': {'certificates': before}, 'after': {'certificates': after}}

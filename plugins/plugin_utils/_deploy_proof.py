# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This plugin_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Proven rotation in the ksef_deploy role, for certificates whose key stays on the host.

The enrollment (ksef_certificate) revokes nothing for them. Once the new certificate is installed, the controller
proves it through the host (ksef_certificate_proof prepare, ksef_deploy_host operation=sign, ksef_certificate_proof
finish), and only the predecessors of proven successors are revoked (ksef_certificate_revoke, once for the batch).
A predecessor whose successor could not be proven stays active; a later run that finds it still active next to
the deployed successor (plan action `prove`) proves the successor and revokes it then.

- predecessors(): the active certificates of a declaration's name and type requested before the deployed one;
- rotations(): per host of the batch, each new or deployed successor with predecessors to prove it against;
- proof_requests() / host_signing() / signed_proofs() / revocations(): what goes to each task and comes back;
- outcome(): what the account says of one host's certificate (each superseded serial, revoked or not, and why).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.ksef.certificates.plugins.module_utils import _rules
# _deploy imports this file too; deploy_id is looked up when called, once both are loaded.
from ansible_collections.ksef.certificates.plugins.plugin_utils import _deploy


def _requested(cert):
    """When KSeF received the certificate's request (requestDate, else validFrom) as a datetime, or None."""
    return _rules.parse_datetime_or_none(cert.get('request_date') or cert.get('valid_from'))


def predecessors(item, serial, active):
    """[{serial_number, valid_to}] of the active certificates (ksef_certificate_info entries) with the name and type
    of `item` that were requested before certificate `serial`; [] when `serial` is not among them (nothing to
    compare with) or nothing older is active. A younger one (an enrollment a stopped run left behind) is never one."""
    by_serial = dict((cert['serial_number'].upper(), cert) for cert in active or [])
    deployed = by_serial.get((serial or '').upper())
    if deployed is None or _requested(deployed) is None:
        return []
    older = []
    for cert in active or []:
        if cert.get('name') != item['name'] or cert.get('type') != item['type'] or cert['serial_number'].upper() == serial.upper():
            continue
        requested = _requested(cert)
        if requested is not None and requested < _requested(deployed):
            older.append({'serial_number': cert['serial_number'].upper(), 'valid_to': cert.get('valid_to') or ''})
    return older


def actives_of(item, active):
    """[{serial_number, valid_to}] of every active certificate of the item's name and type: what a renewal enrolled
    now supersedes (the new one is not among them yet; a certificate KSeF issued earlier for the same key, held
    while it was not valid, may be, and is left out once its serial is known)."""
    return [{'serial_number': cert['serial_number'].upper(), 'valid_to': cert.get('valid_to') or ''}
            for cert in active or [] if cert.get('name') == item['name'] and cert.get('type') == item['type']]


def superseded_by(entry, result, serial):
    """The predecessors of the certificate `serial` ksef_certificate returned (`result`) for the plan entry: those it
    lists as superseded, or, when it returned a certificate issued earlier for the host's key (action none: it
    supersedes nothing in KSeF's eyes), the active certificates of the name and type the plan saw."""
    listed = result.get('superseded') or entry.get('predecessors') or []
    return [{'serial_number': old['serial_number'], 'valid_to': old.get('valid_to') or ''}
            for old in listed if old['serial_number'] != serial]


def _issued(enrolled):
    return dict((_deploy.deploy_id(cert['name'], cert['type']), cert) for cert in (enrolled or {}).get('certificates') or [])


def proof_id(host, item_id):
    """A proof's id: the host and the declaration's id (deploy_id), "host|name|type"."""
    return '%s|%s' % (host, item_id)


def rotations(batch, enrolled, hosts):
    """The successors of the batch's hosts to prove: [{id, host, item_id, type, key_path, certificate, serial_number,
    predecessors, revoke}], for `hosts` (ansible_play_batch: a host that failed before has left it).

    enroll: the certificate ksef_certificate issued (its PEM and the serials it superseded, none revoked by it);
    install / prove: the certificate on the host (its PEM from operation=prepare) and its active predecessors."""
    issued = _issued(enrolled)
    found = []
    for host in hosts or []:
        for entry in ((batch or {}).get('hosts') or {}).get(host, {}).get('plan') or []:
            if entry['action'] == 'enroll':
                result = issued.get(entry['id']) or {}
                # pending: valid only later, so not installed (_deploy.installs) and nothing to prove yet.
                pem = result.get('certificate_pem') or '' if result.get('action') != 'pending' else ''
                serial = (result.get('certificate') or {}).get('serial_number') or ''
                older = superseded_by(entry, result, serial)
            elif entry['action'] in ('install', 'prove'):
                pem = entry['probe'].get('certificate_pem') or ''
                serial = entry['probe'].get('serial_number') or ''
                older = entry.get('predecessors') or []
            else:
                continue
            if not pem or not older:
                continue
            found.append({'id': proof_id(host, entry['id']), 'host': host, 'item_id': entry['id'], 'type': entry['type'],
                          'key_path': entry['key_path'], 'certificate': pem, 'serial_number': serial,
                          'predecessors': older, 'revoke': bool(entry['revoke_superseded'])})
    return found


def proof_requests(batch, enrolled, hosts):
    """ksef_certificate_proof step=prepare's certificates."""
    return [{'id': rotation['id'], 'type': rotation['type'], 'certificate': rotation['certificate']}
            for rotation in rotations(batch, enrolled, hosts)]


def host_signing(prepared, batch, enrolled, host):
    """What this host signs: [{id, key_path, data, scheme}] of the prepared proofs of its certificates."""
    key_paths = dict((rotation['id'], rotation['key_path']) for rotation in rotations(batch, enrolled, [host]))
    return [{'id': proof['id'], 'key_path': key_paths[proof['id']], 'data': proof['data'], 'scheme': proof['scheme']}
            for proof in (prepared or {}).get('proofs') or [] if proof['id'] in key_paths and proof.get('data')]


def signed_proofs(prepared, signed_results):
    """ksef_certificate_proof step=finish's proofs: the prepared ones, each with its host's signature (or the
    reason the host did not sign). signed_results: every host's registered loop of operation=sign."""
    signatures, failures = {}, {}
    for result in signed_results or []:
        proof = result.get('item') or {}
        if result.get('signature'):
            signatures[proof.get('id')] = result['signature']
        elif proof.get('id'):
            failures[proof['id']] = result.get('msg') or 'the host did not sign'
    proofs = []
    for proof in (prepared or {}).get('proofs') or []:
        entry = dict(proof)
        if proof['id'] in signatures:
            entry['signature'] = signatures[proof['id']]
        elif proof['id'] in failures:
            entry['sign_failure'] = failures[proof['id']]
        proofs.append(entry)
    return proofs


def _failure(result):
    """The message of a registered module result that ran and failed (failed_when: false keeps it), else None."""
    if not result or result.get('skipped') or 'proofs' in result:
        return None
    return result.get('msg')


def _finished(finished):
    return dict((proof['id'], proof) for proof in (finished or {}).get('proofs') or [])


def revocations(batch, enrolled, finished, hosts):
    """The serials to revoke: the predecessors of the proven successors whose declaration revokes them (by type:
    Authentication yes, Offline no, unless revoke_superseded says otherwise)."""
    proven = _finished(finished)
    serials = []
    for rotation in rotations(batch, enrolled, hosts):
        if rotation['revoke'] and (proven.get(rotation['id']) or {}).get('proven') is True:
            serials.extend(old['serial_number'] for old in rotation['predecessors'] if old['serial_number'] not in serials)
    return serials


def outcome(host, item, older, proofs, check_mode):
    """(superseded entries with `revoked`, the proof's summary or None) of one host's certificate.

    older: its predecessors [{serial_number, valid_to}]; proofs: {'prepared' / 'finished': the registered results of
    ksef_certificate_proof, 'revoked': the registered ksef_certificate_revoke result}. In check mode: would the run revoke them."""
    if check_mode:
        return [dict(old, revoked=bool(item['revoke_superseded'])) for old in older], None
    proofs = proofs or {}
    proof = _finished(proofs.get('finished')).get(proof_id(host, item['id']))
    revoke = proofs.get('revoked') or {}
    done = set((revoke.get('revoked') or []) + (revoke.get('already_revoked') or []))
    superseded = [dict(old, revoked=old['serial_number'] in done) for old in older]
    if proof is None:
        # A proof step that failed as a whole (KSeF unreachable, bad input): its message is every proof's reason.
        failure = (_failure(proofs.get('prepared')) or _failure(proofs.get('finished'))) if older else None
        return superseded, ({'serial_number': None, 'method': None, 'proven': False, 'reason': failure, 'valid_from': None}
                            if failure else None)
    summary = {'serial_number': proof.get('serial_number'), 'method': proof.get('method'), 'proven': proof.get('proven'),
               'reason': proof.get('reason'), 'valid_from': proof.get('valid_from')}
    if proof.get('proven') and item['revoke_superseded'] and not all(old['revoked'] for old in superseded):
        # Proven, but the revocation call failed: say so (the next run revokes them).
        summary['reason'] = 'proven, but not revoked: %s' % (revoke.get('msg') or 'the revocation did not run')
    return superseded, summary

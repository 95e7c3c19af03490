# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This plugin_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""The decisions of the ksef_deploy role, on the controller (its filters call these functions).

- declarations(): a host's certificate declarations with every default resolved, once, so that the tasks,
  the report and the revoke playbook agree on names and paths;
- problems() / batch_problems(): the rules a declaration breaks, each named on its own;
- directories(): the directories of the deployed files, certificate directories first;
- plan(): per key-on-host certificate, install / keep / enroll, from what ksef_deploy_host found on the host
  and the subject's active certificates in KSeF (_rules.renewal_due, the rule the module applies);
- requests(), installs(), shared_requests(): what goes to ksef_certificate and what comes back;
- result(): ksef_deploy_result; remove_selection(): the revoke playbook's choice of files to remove.

The certificate name rule and the renewal rule come from module_utils/_rules.py; the checks of text values
from module_utils/_host/checks.py (used by the host module too).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
import datetime
import posixpath
import re
from collections.abc import Mapping

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.ksef.certificates.plugins.module_utils import _rules
from ansible_collections.ksef.certificates.plugins.module_utils._host.backend import BACKENDS
from ansible_collections.ksef.certificates.plugins.module_utils._host.checks import passphrase_problem, text_problem
# _deploy_proof imports this file too: its functions are looked up when called, once both are loaded.
from ansible_collections.ksef.certificates.plugins.plugin_utils import _deploy_proof

TYPES = _rules.CERTIFICATE_TYPES
KEY_LOCATIONS = ('host', 'controller')
KEY_TYPES = _rules.KEY_TYPES
FORMATS = ('pem', 'pkcs12')

_POLISH_TO_ASCII = {u'ą': 'a', u'ć': 'c', u'ę': 'e', u'ł': 'l', u'ń': 'n', u'ó': 'o', u'ś': 's', u'ź': 'z', u'ż': 'z',
                    u'Ą': 'A', u'Ć': 'C', u'Ę': 'E', u'Ł': 'L', u'Ń': 'N', u'Ó': 'O', u'Ś': 'S', u'Ź': 'Z', u'Ż': 'Z'}


def deploy_id(name, cert_type):
    """The one id of a declared certificate in the role, its filters, the report and the revoke playbook ("name|type":
    KSeF keeps one name per type). Filter ksef_deploy_id."""
    return '%s|%s' % (name, cert_type)


def deploy_label(item_id):
    """'name (type)' of a deploy_id, for messages."""
    name, dummy, cert_type = item_id.rpartition('|')
    return '%s (%s)' % (name, cert_type)


def _given(cert, key, default):
    """A per-certificate value, or the host-level default when the declaration leaves it out (or null)."""
    value = cert.get(key)
    return default if value is None else value


def _ruled(cert, key, settings, rule_default):
    """A per-certificate value, else the host-level ksef_deploy_<key>, else (both null) the collection's rule
    from _rules, the one ksef_certificate applies: the role restates no default of its own."""
    return _given(cert, key, _given(settings, 'ksef_deploy_' + key, rule_default))


def _revoke_superseded(cert, cert_type, settings):
    """revoke_superseded resolved with _rules.revoke_superseded: an explicit value wins, null is by type."""
    explicit = _given(cert, 'revoke_superseded', settings.get('ksef_deploy_revoke_superseded'))
    return _rules.revoke_superseded(cert_type, None if explicit is None else boolean(explicit))


def _file_slug(name, suffix):
    """The name made file-safe, with the type appended unless the name already ends with it."""
    ascii_name = ''.join(_POLISH_TO_ASCII.get(char, char) for char in name)
    slug = re.sub(r'[^A-Za-z0-9_.-]', '-', ascii_name)
    return slug if slug.endswith(suffix) else slug + suffix


class DeclarationError(ValueError):
    """Settings of a wrong type: one short sentence per such value in `problems`."""

    def __init__(self, problems):
        super(DeclarationError, self).__init__('; '.join(problems))
        self.problems = problems


# The value types of the declaration options. The role's argument spec documents them but does not enforce them:
# its failure would print the whole spec instead of naming the variable.
_TEXT_OPTIONS = ('name', 'type', 'key_location', 'key_type', 'key_path', 'certificate_path', 'pkcs12_path', 'pkcs12_passphrase',
                 'owner', 'group', 'controller_key_dir')
# Settings of the run that the role's prepare step hands over with the declarations' (vars/main.yml).
_RUN_SETTINGS = ('ksef_deploy_enrollment_wait_timeout', 'ksef_deploy_replace_missing_keys', 'ksef_deploy_backend')
_TEXT_SETTINGS = ('ksef_deploy_key_location', 'ksef_deploy_key_type', 'ksef_deploy_controller_key_dir', 'ksef_deploy_key_dir',
                  'ksef_deploy_certificate_dir', 'ksef_deploy_owner', 'ksef_deploy_group')
_CHOICES = {'type': TYPES, 'key_location': KEY_LOCATIONS, 'key_type': KEY_TYPES}


def _kind(value):
    for kinds, name in (((bool,), 'a boolean'), ((Mapping,), 'a dict'), ((str,), 'a string'), ((int, float), 'a number')):
        if isinstance(value, kinds):
            return name
    return 'a list' if isinstance(value, (list, tuple)) else 'a %s' % type(value).__name__


def _whole_number(value):
    """An int, or text of one (what -e gives): what declarations() turns into an int."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return False
    try:
        int(value)
    except ValueError:
        return False
    return True


def _expected(option, value):
    """What `option` must be when `value` cannot be it (None when it can, or when it is null: the default applies)."""
    if value is None:
        return None
    if option in ('formats', 'ksef_deploy_formats'):
        if not isinstance(value, (list, tuple)) or not all(isinstance(fmt, str) for fmt in value):
            return 'a list of formats (pem, pkcs12)'
    elif option.endswith('renew_before_days'):
        if not _whole_number(value):
            return 'a whole number of days'
    elif option == 'ksef_deploy_enrollment_wait_timeout':
        if not _whole_number(value):
            return 'a whole number of seconds'
    elif option == 'ksef_deploy_backend':
        if value not in BACKENDS:
            return '%s or %s' % (', '.join(BACKENDS[:-1]), BACKENDS[-1])
    elif option.endswith('revoke_superseded') or option == 'ksef_deploy_replace_missing_keys':
        try:
            boolean(value, strict=True)
        except TypeError:
            return 'true or false'
    elif (option in _TEXT_OPTIONS or option in _TEXT_SETTINGS) and isinstance(value, (list, tuple, Mapping)):
        choices = _CHOICES.get(option.replace('ksef_deploy_', ''))
        return 'a string (%s)' % ' or '.join(choices) if choices else 'a string'
    return None


def _host_type_problems(settings, host):
    problems = []
    for option in _TEXT_SETTINGS + _RUN_SETTINGS + ('ksef_deploy_formats', 'ksef_deploy_renew_before_days', 'ksef_deploy_revoke_superseded'):
        value = settings.get(option)
        expected = _expected(option, value)
        if expected:
            # A text value is quoted only where it is a choice (never a passphrase).
            found = repr(value) if option == 'ksef_deploy_backend' and isinstance(value, str) else _kind(value)
            problems.append('%s on %s must be %s, not %s' % (option, host, expected, found))
    certificates = settings.get('ksef_deploy_certificates')
    if certificates is not None and not isinstance(certificates, (list, tuple)):
        problems.append('ksef_deploy_certificates on %s must be a list of certificate entries (dicts with name, type, ...), '
                        'not %s' % (host, _kind(certificates)))
    return problems


def _entry_type_problems(number, cert, host):
    label = 'Certificate entry %d of ksef_deploy_certificates on %s' % (number, host)
    if not isinstance(cert, Mapping):
        return ['%s must be a dict (name, type, ...), not %s' % (label, _kind(cert))]
    if isinstance(cert.get('name'), str):
        label = '%s ("%s")' % (label, cert['name'])
    return ['%s: %s must be %s, not %s' % (label, option, _expected(option, value), _kind(value))
            for option, value in cert.items() if _expected(option, value)]


def setting_problems(settings, host):
    """The settings and certificate entries of a host whose value has the wrong type, one sentence each (the value
    is described, never quoted: it may be a passphrase)."""
    problems = _host_type_problems(settings, host)
    if isinstance(settings.get('ksef_deploy_certificates'), (list, tuple)):
        for number, cert in enumerate(settings['ksef_deploy_certificates'], start=1):
            problems.extend(_entry_type_problems(number, cert, host))
    return problems


def checked_declarations(settings, host):
    """(declarations, problems) of one host: the declarations of the entries whose values have the right types, and
    one sentence per value of a wrong type and per rule those declarations break, so one run names them all."""
    if _host_type_problems(settings, host):
        return [], setting_problems(settings, host)
    entries = list(enumerate(settings.get('ksef_deploy_certificates') or [], start=1))
    type_problems = dict((number, _entry_type_problems(number, cert, host)) for number, cert in entries)
    items = declarations(dict(settings, ksef_deploy_certificates=[cert for number, cert in entries if not type_problems[number]]),
                         host)
    return items, [problem for number, dummy in entries for problem in type_problems[number]] + problems(items, host)


def declarations(settings, host):
    """The normalized certificate declarations of one host (DeclarationError for values of a wrong type).

    settings: the ksef_deploy_* host-level settings as that host sees them (name -> value).
    """
    mistyped = setting_problems(settings, host)
    if mistyped:
        raise DeclarationError(mistyped)
    items = []
    host_slug = re.sub(r'[^A-Za-z0-9_-]', '-', host)
    for cert in settings.get('ksef_deploy_certificates') or []:
        cert_type = str(cert.get('type') or '').lower()
        location = _given(cert, 'key_location', settings['ksef_deploy_key_location'])
        # A key-on-host certificate belongs to one host: its default name carries the host name (characters
        # KSeF refuses become "-", trimmed to KSeF's 100 characters).
        suffix = '-' + cert_type
        default_name = host_slug[:_rules.NAME_MAX_LENGTH - len(suffix)] + suffix if location == 'host' else ''
        name = str(_given(cert, 'name', default_name))
        slug = _file_slug(name, suffix)
        key_dir = settings['ksef_deploy_key_dir']
        key_path = _given(cert, 'key_path', '%s/%s.key' % (key_dir, slug))
        formats = list(_given(cert, 'formats', settings['ksef_deploy_formats']))
        controller_dir = _given(cert, 'controller_key_dir', settings['ksef_deploy_controller_key_dir'])
        passphrase = cert.get('pkcs12_passphrase')
        passphrase = '' if passphrase in (None, '') else str(passphrase)
        items.append({
            'host': host,
            'id': deploy_id(name, cert_type),
            'name': name,
            'type': cert_type,
            'key_location': location,
            'key_type': _ruled(cert, 'key_type', settings, _rules.DEFAULT_KEY_TYPE),
            'key_path': key_path,
            'next_key_path': key_path + '.next',
            'csr_path': key_path + '.next.csr',
            'csr_config_path': key_path + '.next.cnf',
            'certificate_path': _given(cert, 'certificate_path', '%s/%s.crt' % (settings['ksef_deploy_certificate_dir'], slug)),
            'formats': formats,
            'pkcs12': 'pkcs12' in formats,
            'pkcs12_path': _given(cert, 'pkcs12_path', '%s/%s.p12' % (key_dir, slug)),
            'pkcs12_passphrase': passphrase,
            'pkcs12_passphrase_set': bool(passphrase),
            'owner': _given(cert, 'owner', settings['ksef_deploy_owner']),
            'group': _given(cert, 'group', settings['ksef_deploy_group']),
            'key_file_mode': _given(cert, 'key_file_mode', settings['ksef_deploy_key_file_mode']),
            'certificate_file_mode': _given(cert, 'certificate_file_mode', settings['ksef_deploy_certificate_file_mode']),
            'pkcs12_file_mode': _given(cert, 'pkcs12_file_mode', settings['ksef_deploy_pkcs12_file_mode']),
            'key_dir_mode': _given(cert, 'key_dir_mode', settings['ksef_deploy_key_dir_mode']),
            'certificate_dir_mode': _given(cert, 'certificate_dir_mode', settings['ksef_deploy_certificate_dir_mode']),
            'renew_before_days': int(_ruled(cert, 'renew_before_days', settings, _rules.DEFAULT_RENEW_BEFORE_DAYS)),
            'revoke_superseded': _revoke_superseded(cert, cert_type, settings),
            'controller_key_dir': controller_dir,
            'controller_key_path': '%s/%s.key' % (controller_dir, slug),
            'controller_certificate_path': '%s/%s.crt' % (controller_dir, slug),
        })
    return items


# ---------------------------------------------------------------------------------------------
# Validation: each message names one broken rule
# ---------------------------------------------------------------------------------------------

def _item_problems(item):
    problems = []
    if item['type'] not in TYPES:
        problems.append('type must be %s, not %r' % (' or '.join(TYPES), item['type']))
    if item['key_location'] not in KEY_LOCATIONS:
        problems.append('key_location must be host or controller, not %r' % (item['key_location'],))
    if item['key_type'] not in KEY_TYPES:
        problems.append('key_type must be %s, not %r' % (' or '.join(KEY_TYPES), item['key_type']))
    if not item['name'] and item['key_location'] == 'controller':
        problems.append('a controller-side certificate needs an explicit name')
    elif not _rules.certificate_name_valid(item['name']):
        problems.append(_rules.certificate_name_problem(item['name']))
    unknown = [fmt for fmt in item['formats'] if fmt not in FORMATS]
    if unknown:
        problems.append('formats may only hold pem and pkcs12, not %s' % ', '.join(repr(fmt) for fmt in unknown))
    if item['pkcs12'] and not item['pkcs12_passphrase_set']:
        problems.append('the pkcs12 format needs pkcs12_passphrase')
    elif item['pkcs12_passphrase_set'] and item.get('pkcs12_passphrase'):
        problem = passphrase_problem(item['pkcs12_passphrase'], 'pkcs12_passphrase')
        if problem:
            problems.append(problem)
    if item['key_location'] == 'controller' and not item['controller_key_dir']:
        problems.append('a controller-side key needs ksef_deploy_controller_key_dir')
    if item['renew_before_days'] < 0:
        problems.append('renew_before_days must be 0 or more')
    for option in ('key_path', 'certificate_path', 'pkcs12_path', 'controller_key_dir'):
        value = item[option]
        problem = text_problem(value, option, allow_empty=option == 'controller_key_dir') if isinstance(value, str) else (
            '%s must be a string' % option)
        if problem:
            problems.append(problem)
    return problems


def problems(items, host):
    """The problems of one host's declarations, one sentence per broken rule ([] when all is well)."""
    found = []
    for item in items:
        label = 'Certificate declaration "%s" (%s) on %s' % (item['name'], item['type'], host)
        found.extend('%s: %s' % (label, problem) for problem in _item_problems(item))
    for field, what in (('id', 'name and type'), ('key_path', 'key_path'), ('certificate_path', 'certificate_path')):
        values = [item[field] for item in items]
        duplicates = sorted(set(value for value in values if values.count(value) > 1))
        if duplicates:
            found.append('%s declares two certificates with the same %s: %s' % (host, what, ', '.join(duplicates)))
    return found


def batch_problems(all_items):
    """Rules across the hosts of a play batch: a key-on-host certificate has its own name on each host."""
    host_ids = [item['id'] for item in all_items if item['key_location'] == 'host']
    controller_ids = set(item['id'] for item in all_items if item['key_location'] == 'controller')
    found = []
    shared = sorted(set(value for value in host_ids if host_ids.count(value) > 1))
    if shared:
        found.append('A key-on-host certificate must have its own name on each host (the default name includes the '
                     'host name); declared by more than one host: %s' % ', '.join(shared))
    reused = sorted(set(host_ids) & controller_ids)
    if reused:
        found.append('A key-on-host certificate must not reuse the name and type of a controller-side certificate: %s'
                     % ', '.join(reused))
    return found


# ---------------------------------------------------------------------------------------------
# Directories
# ---------------------------------------------------------------------------------------------

def directories(items):
    """The directories of this host's deployed files as [{path, mode, group}], certificate directories
    first (so a missing parent they share with a key directory is created readable), then those of keys and
    PKCS#12 bundles. A directory that holds a key is a key directory even when a certificate is there too.

    The directories are owned by the connecting user (root), never by ksef_deploy_owner: an owner of the
    directory could swap the files in it for links between two steps of the role. The group (ksef_deploy_group)
    lets an application's group reach its files through a mode such as 0750; it cannot write there."""
    key_dirs, cert_dirs = {}, {}
    for item in items:
        for path in [item['key_path']] + ([item['pkcs12_path']] if item['pkcs12'] else []):
            directory = posixpath.dirname(path)
            if directory and directory not in key_dirs:
                key_dirs[directory] = {'path': directory, 'mode': item['key_dir_mode'], 'group': item['group']}
    for item in items:
        directory = posixpath.dirname(item['certificate_path'])
        if directory and directory not in key_dirs and directory not in cert_dirs:
            cert_dirs[directory] = {'path': directory, 'mode': item['certificate_dir_mode'], 'group': item['group']}
    return list(cert_dirs.values()) + list(key_dirs.values())


# ---------------------------------------------------------------------------------------------
# Key on the host: decide, enroll, install
# ---------------------------------------------------------------------------------------------

INSPECTION_FIELDS = ('key_exists', 'next_key_exists', 'certificate_exists', 'certificate_parsed',
                     'certificate_matches_key', 'certificate_matches_next_key', 'serial_number', 'valid_to',
                     'fingerprint_sha256', 'renewal_due', 'certificate_pem')


class HostFiles(collections.namedtuple('HostFiles', INSPECTION_FIELDS)):
    """What ksef_deploy_host (operation info, or prepare per certificate) found on the host for one declaration."""

    __slots__ = ()

    @classmethod
    def of(cls, result):
        return cls(*(result.get(field) for field in INSPECTION_FIELDS))


def _every_run(days, listed):
    """A note when renew_before_days reaches the lifetime KSeF lists (_rules.renews_every_run, as ksef_certificate warns)."""
    if not listed or not listed.get('valid_from'):
        return ''
    lifetime = _rules.renews_every_run(days, listed['valid_from'], listed['valid_to'])
    if lifetime is None:
        return ''
    return ' (renew_before_days %d is at or above its lifetime of %d days: every run renews it; choose fewer days)' % (days, lifetime)


def decide_key_on_host(item, found, active, now):
    """(action, reason) for one key-on-host certificate: install | enroll | keep, the role's own decision.

    ksef_certificate decides for keys it holds (module_utils/_decide.py); a key on a host is seen only through
    HostFiles, so the role decides here, with the rules the two share from _rules (renewal_due, renews_every_run).
    """
    days = item['renew_before_days']
    serial = found.serial_number
    if found.next_key_exists and found.certificate_matches_next_key:
        return 'install', 'the new key and its certificate are not installed yet'
    if not found.certificate_parsed:
        return 'enroll', 'no readable certificate'
    if not found.key_exists:
        return 'enroll', 'the private key %s is missing' % item['key_path']
    if not found.certificate_matches_key:
        return 'enroll', 'the certificate does not match the private key'
    if found.renewal_due:
        return 'enroll', 'the certificate expires within %d days%s' % (days, _every_run(days, active.get(serial)))
    if serial not in active:
        return 'enroll', 'certificate %s is not active in KSeF (revoked, blocked or expired)' % serial
    # KSeF's end of validity wins over the file's when it is earlier (KSeF can shorten it).
    if _rules.renewal_due(active[serial]['valid_to'], now, days):
        return 'enroll', 'KSeF says certificate %s expires within %d days%s' % (serial, days, _every_run(days, active[serial]))
    return 'keep', 'valid until %s' % active[serial]['valid_to']


def plan(inspections, info, now=None):
    """install | keep | prove | enroll per key-on-host certificate.

    prove: the deployed certificate is kept, but an older certificate of its name and type is still active and the
    declaration revokes superseded ones: an earlier run could not prove the successor (or stopped before it
    revoked); this run proves it through the host and revokes the predecessors then (_deploy_proof).

    inspections: the registered loop results of ksef_deploy_host operation=info (each with its item);
    info: the registered ksef_certificate_info result (active certificates), or nothing when it was skipped.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    active = {}
    for cert in (info or {}).get('certificates') or []:
        active[cert['serial_number'].upper()] = cert
    decided = []
    for result in inspections:
        item = result['item']
        found = HostFiles.of(result)
        action, reason = decide_key_on_host(item, found, active, now)
        serial = found.serial_number or ''
        if action == 'enroll':
            older = _deploy_proof.actives_of(item, active.values())
        else:
            older = _deploy_proof.predecessors(item, serial, active.values()) if action in ('keep', 'install') else []
        if action == 'keep' and older and item['revoke_superseded']:
            action = 'prove'
            reason = ('superseded %s still active: the deployed certificate %s is proven before %s revoked'
                      % (', '.join(old['serial_number'] for old in older), serial, 'it is' if len(older) == 1 else 'they are'))
        entry = dict(item)
        entry.update(action=action, reason=reason, serial_number=serial,
                     valid_to=active[serial]['valid_to'] if serial in active else (found.valid_to or ''),
                     probe=found._asdict(), predecessors=older)
        decided.append(entry)
    return decided


def requests(csr_results, ids=None):
    """ksef_certificate list entries for the CSRs made on this host (registered loop of operation=csr); ids: only
    those of these declarations (a later renewal wave, _deploy_waves)."""
    made = []
    for result in csr_results or []:
        if not result.get('csr'):
            continue
        item = result['item']
        if ids is not None and item['id'] not in ids:
            continue
        # The key is on the host: ksef_certificate cannot prove the new certificate, so it revokes nothing; the role
        # revokes the predecessors once the host has proven the successor (_deploy_proof). ksef_certificate plans
        # its waves knowing that their slots come back (caller_revokes_superseded).
        made.append({'name': item['name'], 'type': item['type'], 'csr_content': result['csr'],
                     'renew_before_days': item['renew_before_days'], 'revoke_superseded': False,
                     'caller_revokes_superseded': bool(item['revoke_superseded'])})
    return made


def installs(planned, enrolled):
    """The key-on-host certificates to install on this host, each with the PEM KSeF issued for its CSR
    (enroll) or none (install: the certificate is already on disk)."""
    issued = {}
    for cert in (enrolled or {}).get('certificates') or []:
        issued[deploy_id(cert['name'], cert['type'])] = cert
    selected = []
    for item in planned:
        if item['action'] not in ('enroll', 'install'):
            continue
        result = issued.get(item['id'], {})
        certificate = result.get('certificate') or {}
        # For the host, a new certificate that replaces one it had is a renewal, although KSeF enrolled a fresh
        # one for the new key. KSeF already holding a certificate for the CSR's key (action none: an earlier
        # run's enrollment, found by its public key) still installs a new key on the host.
        ksef_action = result.get('action') or ''
        if ksef_action == 'enrolled' and item['probe']['certificate_parsed']:
            ksef_action = 'renewed'
        elif ksef_action == 'none':
            ksef_action = 'installed'
        entry = dict(item)
        pem = result.get('certificate_pem') or ''
        # An enrolled certificate that did not come back is not installed: its host fails (_deploy_account).
        # A certificate not valid yet (ksef_certificate: pending, not_valid_yet) is not installed where the host's
        # applications read it: the .next key waits, and the first run after its start installs and proves it.
        held = ksef_action == 'pending'
        entry.update(certificate_pem=pem, ksef_action=ksef_action,
                     installable=(bool(pem) and not held) or item['action'] == 'install',
                     serial_number=certificate.get('serial_number', item['serial_number']),
                     valid_to=certificate.get('valid_to', item['valid_to']),
                     superseded=result.get('superseded') or [])
        selected.append(entry)
    return selected


# ---------------------------------------------------------------------------------------------
# Key on the controller
# ---------------------------------------------------------------------------------------------

def shared_requests(controller_items):
    """ksef_certificate list entries for the controller-side certificates of the batch, one per name and type
    however many hosts declare it (the first declaration wins)."""
    seen = set()
    entries = []
    for item in controller_items:
        if item['id'] in seen:
            continue
        seen.add(item['id'])
        entries.append({'name': item['name'], 'type': item['type'], 'private_key_path': item['controller_key_path'],
                        'private_key_type': item['key_type'], 'certificate_path': item['controller_certificate_path'],
                        'renew_before_days': item['renew_before_days'], 'revoke_superseded': item['revoke_superseded']})
    return entries


# ---------------------------------------------------------------------------------------------
# Result and removal
# ---------------------------------------------------------------------------------------------

# The words ksef_certificate uses, for the host-side decisions too; its `none` reads "unchanged" here.
_ACTION_WORDS = {'keep': 'unchanged', 'none': 'unchanged', 'install': 'installed'}


def result(items, planned=None, installed=None, shared=None):
    """ksef_deploy_result: one line per declared certificate of this host (names, serials, dates, paths)."""
    known = {}
    for item in (planned or []) + (installed or []):
        known[item['id']] = item
    for cert in (shared or {}).get('certificates') or []:
        certificate = cert.get('certificate') or {}
        known[deploy_id(cert['name'], cert['type'])] = {
            'action': cert['action'], 'serial_number': certificate.get('serial_number', ''),
            'valid_to': certificate.get('valid_to', '')}
    lines = []
    for item in items:
        entry = known.get(item['id'], {})
        action = entry.get('ksef_action') or entry.get('action') or 'unknown'
        action = _ACTION_WORDS.get(action, action)
        lines.append({
            'name': item['name'], 'type': item['type'], 'key_location': item['key_location'], 'action': action,
            'reason': entry.get('reason', ''), 'serial_number': entry.get('serial_number', ''),
            'valid_to': entry.get('valid_to', ''), 'key_path': item['key_path'],
            'certificate_path': item['certificate_path'], 'pkcs12_path': item['pkcs12_path'] if item['pkcs12'] else '',
        })
    return lines


def remove_selection(inspections, ids=None, serials=None):
    """The declarations to remove: selected by "name|type" or by the serial number of the deployed certificate
    (compared as 16-digit upper-case hex)."""
    wanted_ids = set(ids or [])
    wanted_serials = set(_rules.serial_number_text(serial) for serial in serials or [] if serial)
    selected = []
    for found in inspections:
        item = found['item']
        if item['id'] in wanted_ids or (found.get('serial_number') and found['serial_number'] in wanted_serials):
            if item['id'] not in [chosen['id'] for chosen in selected]:
                selected.append(item)
    return selected

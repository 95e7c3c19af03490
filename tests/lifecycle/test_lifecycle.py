# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Set and forget, over more than one certificate lifetime: scheduled runs on simulated dates.

libfaketime (Debian `faketime`) moves the clock of the emulator and of Ansible together: at each simulated date
the emulator is started again on its state file (SQLite) and the scheduled playbooks run, all with the same
FAKETIME offset ("+Ns"; the monotonic clock stays faked: FAKETIME_DONT_FAKE_MONOTONIC breaks Python's sleep).
Issued certificates live VALIDITY_DAYS (the emulator's --certificate-validity-days; KSeF's 730 would need
hundreds of runs) and renew RENEW_BEFORE_DAYS before expiry.

Two subjects (NIPs), each holding more than half of its active-certificate limit, both types:
- the module path: module_path.yml declares the login certificate, Authentication and Offline certificates with
  ksef_certificate; from the second run on it logs in with the login certificate it renews itself;
- the role path: playbooks/provision.yml (roles/ksef_deploy) over two local hosts, keys on the hosts, the login
  certificate declared with its key on the controller; the second host joins the fleet mid-life.

After every run (ASSERTIONS in docs/TESTING.md): the runs succeeded; every declared certificate deployed is
Active and valid in the emulator's records and matches its key; the emulator's active-certificate peak never went
over the limit; no Offline certificate was ever revoked; the login the run used is the certificate the previous
run left where the login reads it; a run with nothing due changed nothing and sent no enrollment or revocation;
no certificate was enrolled twice in one run; the undeclared certificate expired untouched. At the end: every
declared certificate of day 0 was renewed at least twice. Every violation is collected (the schedule goes on,
as a scheduled job would) and the test fails listing them all with their simulated dates.

Run alone: make lifecycle (docs/TESTING.md, "The lifecycle simulation").
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import glob
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..'))
COLLECTIONS = os.path.join(REPO, 'build', 'collections')
PYTHON = sys.executable
VENV_BIN = os.path.dirname(sys.executable)
# Debian's faketime package puts it under the multiarch directory (/usr/lib/x86_64-linux-gnu/faketime/ on amd64).
LIBFAKETIME = os.environ.get('KSEF_LIBFAKETIME') or (sorted(glob.glob('/usr/lib/*/faketime/libfaketime.so.1'))
                                                     + ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1'])[0]

UTC = datetime.timezone.utc
DAY = datetime.timedelta(days=1)
START = datetime.datetime(2031, 3, 3, 9, 0, tzinfo=UTC)   # a Monday; any date works, it only has to be fixed
VALIDITY_DAYS = 21
RENEW_BEFORE_DAYS = 5
# Past the second renewal window of the certificates of day 0 (days 16 and 32): more than one and a half lifetimes.
END = START + 2 * (VALIDITY_DAYS - RENEW_BEFORE_DAYS) * DAY + 2 * DAY
WEEK = 7 * DAY
SECOND_HOST_JOINS = START + 10 * DAY
UNDECLARED_EXPIRES = START + 5 * DAY
MODULE_LIMIT = 10    # 3 Offline + 3 Authentication declared: renewing them needs 2*3 + 3 + 1 = 10 slots at the peak
ROLE_LIMIT = 8       # 2 Offline + 3 Authentication (the login among them): 2*2 + 3 + 1 = 8


def children_cpu_seconds():
    """CPU time (user + system) of the finished child processes: the emulator, the playbooks and their forks."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def real_now():
    return datetime.datetime.now(UTC)


def iso_epoch(text):
    return datetime.datetime.fromisoformat(text.replace('Z', '+00:00')).timestamp()


def pem_certificate(path):
    with open(path, 'rb') as handle:
        return x509.load_pem_x509_certificate(handle.read())


def spki_sha256(public_key):
    return hashlib.sha256(public_key.public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def key_spki_sha256(path):
    with open(path, 'rb') as handle:
        return spki_sha256(serialization.load_pem_private_key(handle.read(), None).public_key())


class Clock:
    """One simulated date: the FAKETIME offset shared by the emulator and every Ansible process of the step."""

    def __init__(self, when):
        self.when = when
        self.offset = int(round(when.timestamp() - time.time()))

    def env(self, base=None):
        env = dict(base if base is not None else os.environ)
        env['LD_PRELOAD'] = LIBFAKETIME
        env['FAKETIME'] = '%+ds' % self.offset
        env.pop('FAKETIME_DONT_FAKE_MONOTONIC', None)
        return env

    def now(self):
        """The simulated time now (the step's processes see the same)."""
        return real_now() + datetime.timedelta(seconds=self.offset)


FETCH_JSON = '''
import json, ssl, sys, urllib.request
context = ssl.create_default_context(cafile=sys.argv[2])
with urllib.request.urlopen(sys.argv[1], context=context, timeout=30) as answer:
    sys.stdout.write(answer.read().decode("utf-8"))
'''


class Emulator:
    """The emulator on its state file, started again at each simulated date under that date's clock."""

    def __init__(self, directory):
        self.directory = directory
        self.state_path = os.path.join(directory, 'state.sqlite')
        self.ca_path = os.path.join(directory, 'ca.pem')
        self.ready_path = os.path.join(directory, 'ready')
        self.log_path = os.path.join(directory, 'emulator.log')
        self.process = None
        self.clock = None
        self.base_url = None

    def start(self, clock):
        if os.path.exists(self.ready_path):
            os.unlink(self.ready_path)
        self.clock = clock
        with open(self.log_path, 'a') as log:
            log.write('--- start at simulated %s\n' % clock.when.isoformat())
            log.flush()
            self.process = subprocess.Popen(
                [PYTHON, '-m', 'ksef_emulator', '--host', '127.0.0.1', '--port', '0', '--ready-file', self.ready_path,
                 '--state', self.state_path, '--tls-ca-file', self.ca_path, '--processing-delay', '0.2',
                 '--certificate-validity-days', str(VALIDITY_DAYS)],
                env=clock.env(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not (os.path.exists(self.ready_path) and os.path.getsize(self.ready_path)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail('the emulator did not start at %s; see %s' % (clock.when, self.log_path))
            time.sleep(0.05)
        with open(self.ready_path) as handle:
            self.base_url = re.search(r'https://[^\s"/]+', handle.read()).group(0)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    @property
    def api_url(self):
        return self.base_url + '/v2'

    def control(self, path):
        """GET a control endpoint; under the step's clock, since the TLS server certificate is issued for it."""
        output = subprocess.run([PYTHON, '-c', FETCH_JSON, self.base_url + path, self.ca_path], env=self.clock.env(),
                                check=True, capture_output=True, text=True).stdout
        return json.loads(output)


class Run:
    """What one ansible-playbook run left: exit code, output, and the PLAY RECAP counts per host."""

    RECAP = re.compile(r'^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', re.M)

    def __init__(self, label, rc, output, seconds):
        self.label = label
        self.rc = rc
        self.output = output
        self.seconds = seconds
        self.recap = dict((host, {'changed': int(changed), 'failed': int(failed), 'unreachable': int(unreachable)})
                          for host, dummy, changed, unreachable, failed in self.RECAP.findall(self.output))

    @property
    def changed(self):
        return sum(counts['changed'] for counts in self.recap.values())

    def failure(self):
        lines = [line for line in self.output.splitlines() if line.startswith(('fatal:', 'failed:', 'ERROR!'))
                 or '"msg"' in line]
        return '%s failed (rc %d): %s' % (self.label, self.rc, ' | '.join(lines)[-1500:] or self.output[-1500:])


class Subject:
    """A NIP with its TEST seal, its limit, its declared certificates and the files its login reads."""

    def __init__(self, label, root, limit):
        self.label = label
        self.root = os.path.join(root, label)
        os.makedirs(self.root)
        self.limit = limit
        self.nip = None
        self.seal = (os.path.join(self.root, 'seal.crt'), os.path.join(self.root, 'seal.key'))
        self.login = None       # (certificate, key) files the login reads once the seal is no longer used
        self.login_name = None

    def make_seal(self, clock):
        self.nip = subprocess.run([PYTHON, '-m', 'ksef_emulator.testcerts', 'nip'], env=clock.env(), check=True,
                                  capture_output=True, text=True).stdout.strip()
        subprocess.run([PYTHON, '-m', 'ksef_emulator.testcerts', 'seal', '--nip', self.nip, '--cert-out', self.seal[0],
                        '--key-out', self.seal[1]], env=clock.env(), check=True, capture_output=True)

    def connection(self, emulator, with_seal):
        certificate, key = self.seal if with_seal else self.login
        return {'api_url': emulator.api_url, 'ca_path': emulator.ca_path, 'context_type': 'nip', 'context_id': self.nip,
                'auth_certificate_path': certificate, 'auth_private_key_path': key, 'verify_certificate_chain': False}

    def records(self, state):
        return dict((item['serialNumber'], item) for item in state['certificates']
                    if item['subjectIdentifier']['value'] == self.nip)


class Declared:
    """One declared certificate and where it is deployed (the files a service reads)."""

    def __init__(self, subject, name, certificate_type, certificate_path, key_path, since=START):
        self.subject = subject
        self.name = name
        self.type = certificate_type
        self.certificate_path = certificate_path
        self.key_path = key_path
        self.since = since      # simulated date from which it is declared

    @property
    def label(self):
        return '%s %s (%s)' % (self.subject.label, self.name, self.type)

    def deployed_serial(self):
        if not os.path.exists(self.certificate_path):
            return None
        return '%016X' % pem_certificate(self.certificate_path).serial_number


class Simulation:
    def __init__(self, root):
        self.root = root
        self.emulator = Emulator(os.path.join(root, 'emulator'))
        os.makedirs(self.emulator.directory)
        self.module = Subject('module', root, MODULE_LIMIT)
        self.role = Subject('role', root, ROLE_LIMIT)
        self.violations = []
        self.log = []
        self.undeclared_serial = None
        self.previous_state = {'certificates': []}
        self.ca_pem = None
        self.module_declared = self._module_declarations()
        self.role_declared = self._role_declarations()

    # --- the fleet ---------------------------------------------------------------------------------------

    def _module_declarations(self):
        files = os.path.join(self.module.root, 'files')
        os.makedirs(files)
        self.module.login_name = 'sim-login'
        items = [('sim-login', 'Authentication'), ('sim-auth-1', 'Authentication'), ('sim-auth-2', 'Authentication'),
                 ('sim-offline-1', 'Offline'), ('sim-offline-2', 'Offline'), ('sim-offline-3', 'Offline')]
        declared = [Declared(self.module, name, kind, os.path.join(files, name + '.crt'), os.path.join(files, name + '.key'))
                    for name, kind in items]
        self.module.login = (declared[0].certificate_path, declared[0].key_path)
        return declared

    def module_certificates(self):
        """The ksef_certificate list: one Offline certificate with an RSA key, the others EC."""
        result = []
        for item in self.module_declared:
            entry = {'name': item.name, 'type': item.type.lower(), 'private_key_path': item.key_path,
                     'certificate_path': item.certificate_path}
            if item.name == 'sim-offline-3':
                entry['private_key_type'] = 'rsa'
            result.append(entry)
        return result

    def _role_declarations(self):
        controller = os.path.join(self.role.root, 'controller')
        self.role.login_name = 'sim-role-login'
        login = Declared(self.role, 'sim-role-login', 'Authentication',
                         os.path.join(controller, 'sim-role-login-authentication.crt'),
                         os.path.join(controller, 'sim-role-login-authentication.key'))
        self.role.login = (login.certificate_path, login.key_path)
        declared = [login]
        for host, since in (('app1', START), ('app2', SECOND_HOST_JOINS)):
            for kind in ('Authentication', 'Offline'):
                name = '%s-%s' % (host, kind.lower())     # the role's default name of a key-on-host certificate
                declared.append(Declared(self.role, name, kind, os.path.join(self.role.root, host, 'certs', name + '.crt'),
                                         os.path.join(self.role.root, host, 'private', name + '.key'), since))
        return declared

    def role_inventory(self, when):
        hosts = {}
        for host in ('app1', 'app2'):
            items = [item for item in self.role_declared if item.name.startswith(host + '-') and item.since <= when]
            if not items:
                continue
            declarations = [{'name': item.name, 'type': item.type.lower()} for item in items]
            if host == 'app1':
                declarations.insert(0, {'name': 'sim-role-login', 'type': 'authentication', 'key_location': 'controller'})
            hosts[host] = {'ksef_deploy_key_dir': os.path.join(self.role.root, host, 'private'),
                           'ksef_deploy_certificate_dir': os.path.join(self.role.root, host, 'certs'),
                           'ksef_deploy_certificates': declarations}
        return {'all': {'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': PYTHON,
                                 'ksef_deploy_controller_key_dir': os.path.join(self.role.root, 'controller'),
                                 'ksef_deploy_renew_before_days': RENEW_BEFORE_DAYS},
                        'hosts': hosts}}

    def declared_at(self, when):
        return [item for item in self.module_declared + self.role_declared if item.since <= when]

    # --- running ansible-playbook under the step's clock -----------------------------------------------------

    def playbook(self, clock, label, playbook, variables, inventory=None):
        """Start ansible-playbook under the step's clock; finish() waits for it. The two paths run side by side."""
        work = os.path.join(self.root, 'runs')
        os.makedirs(work, exist_ok=True)
        variables_path = os.path.join(work, '%s-vars.json' % label)
        with open(variables_path, 'w') as handle:
            json.dump(variables, handle)
        env = clock.env()
        env.update({'ANSIBLE_COLLECTIONS_PATH': COLLECTIONS, 'ANSIBLE_NOCOLOR': '1', 'ANSIBLE_FORCE_COLOR': '0',
                    'ANSIBLE_PYTHON_INTERPRETER': PYTHON, 'ANSIBLE_LOCALHOST_WARNING': 'false',
                    'ANSIBLE_INVENTORY_UNPARSED_WARNING': 'false', 'ANSIBLE_RETRY_FILES_ENABLED': 'false',
                    'PATH': VENV_BIN + os.pathsep + os.environ.get('PATH', '')})
        command = [os.path.join(VENV_BIN, 'ansible-playbook'), playbook, '-e', '@' + variables_path]
        if inventory is None:
            command += ['-i', 'localhost,', '-c', 'local']
        else:
            command += ['-i', inventory]
        output = open(os.path.join(work, '%s.out' % label), 'w+')
        process = subprocess.Popen(command, env=env, cwd=work, stdout=output, stderr=subprocess.STDOUT, text=True)
        return {'label': label, 'process': process, 'output': output, 'started': time.monotonic(), 'clock': clock}

    def finish(self, started):
        """Wait for a playbook started by playbook(); its output goes to runs/runs.log."""
        rc = started['process'].wait()
        seconds = time.monotonic() - started['started']
        with started['output'] as output:
            output.seek(0)
            text = output.read()
        with open(os.path.join(self.root, 'runs', 'runs.log'), 'a') as log:
            log.write('=== %s at simulated %s (rc %d, %.1f s)\n%s\n' % (
                started['label'], started['clock'].when.isoformat(), rc, seconds, text))
        return Run(started['label'], rc, text, seconds)

    def bootstrap(self, clock):
        """Day 0: seals, limits, and the certificate that nobody declares (expires mid-life)."""
        for subject in (self.module, self.role):
            subject.make_seal(clock)
        undeclared = {'name': 'sim-undeclared', 'type': 'authentication',
                      'private_key_path': os.path.join(self.module.root, 'undeclared.key'),
                      'certificate_path': os.path.join(self.module.root, 'undeclared.crt'),
                      'valid_to': UNDECLARED_EXPIRES.isoformat()}
        for subject, extra in ((self.module, {'sim_undeclared': undeclared}), (self.role, {})):
            variables = dict(extra, sim_connection=subject.connection(self.emulator, with_seal=True),
                             sim_max_certificates=subject.limit)
            run = self.finish(self.playbook(clock, 'bootstrap-%s' % subject.label, os.path.join(HERE, 'bootstrap.yml'),
                                            variables))
            assert run.rc == 0, run.failure()
        self.undeclared_serial = '%016X' % pem_certificate(undeclared['certificate_path']).serial_number

    def run_module_path(self, clock, with_seal):
        variables = {'sim_connection': self.module.connection(self.emulator, with_seal),
                     'sim_renew_before_days': RENEW_BEFORE_DAYS, 'sim_certificates': self.module_certificates(),
                     'sim_result_path': os.path.join(self.root, 'runs', 'module-result.json')}
        return self.playbook(clock, 'module-path', os.path.join(HERE, 'module_path.yml'), variables)

    def run_role_path(self, clock, with_seal):
        inventory = os.path.join(self.root, 'runs', 'role-inventory.yml')
        os.makedirs(os.path.dirname(inventory), exist_ok=True)
        with open(inventory, 'w') as handle:
            yaml.safe_dump(self.role_inventory(clock.when), handle)
        variables = {'ksef_connection': self.role.connection(self.emulator, with_seal),
                     'ksef_provision_summary_path': os.path.join(self.root, 'runs', 'role-summary.json')}
        return self.playbook(clock, 'role-path', 'ksef.certificates.provision', variables, inventory)

    # --- one scheduled date ---------------------------------------------------------------------------------

    def due(self, when, items):
        """Declared certificates a run at `when` should act on: missing, or inside the renewal window."""
        result = []
        for item in items:
            if not os.path.exists(item.certificate_path):
                result.append(item)
                continue
            not_after = pem_certificate(item.certificate_path).not_valid_after_utc
            if not_after - RENEW_BEFORE_DAYS * DAY <= when:
                result.append(item)
        return result

    def step(self, when, first):
        cpu_before = children_cpu_seconds()
        wall_before = time.monotonic()
        clock = Clock(when)
        self.emulator.start(clock)
        try:
            if first:
                self.bootstrap(clock)
            self.check_tls_ca_kept()
            logins = dict((subject.label, None if first else '%016X' % pem_certificate(subject.login[0]).serial_number)
                          for subject in (self.module, self.role))
            due = {'module-path': self.due(when, [item for item in self.module_declared if item.since <= when]),
                   'role-path': self.due(when, [item for item in self.role_declared if item.since <= when])}
            runs = [self.finish(started) for started in (self.run_module_path(clock, with_seal=first),
                                                         self.run_role_path(clock, with_seal=first))]
            state = self.emulator.control('/emulator/state')
            self.check(when, runs, due, logins, state)
            self.previous_state = state
        finally:
            self.emulator.stop()
        self.log.append('%s day %2d: module path due %d changed %d rc %d %.0f s; role path due %d changed %d rc %d %.0f s;'
                        ' step %.0f s wall, %.0f s CPU' % (
                            when.date(), (when - START).days, len(due['module-path']), runs[0].changed, runs[0].rc,
                            runs[0].seconds, len(due['role-path']), runs[1].changed, runs[1].rc, runs[1].seconds,
                            time.monotonic() - wall_before, children_cpu_seconds() - cpu_before))
        print(self.log[-1], flush=True)

    def next_date(self, when):
        """Weekly, plus the first hour of each renewal window, daily while a declared certificate is inside its window
        and still valid (a failing renewal is retried every day until it expires, then weekly again), and the day
        the second host joins."""
        candidates = [when + WEEK]
        for item in self.declared_at(when):
            if os.path.exists(item.certificate_path):
                not_after = pem_certificate(item.certificate_path).not_valid_after_utc
                window = not_after - RENEW_BEFORE_DAYS * DAY
                if window > when:
                    candidates.append(window + datetime.timedelta(hours=1))
                elif not_after > when:
                    candidates.append(when + DAY)
        if SECOND_HOST_JOINS > when:
            candidates.append(SECOND_HOST_JOINS)
        return min(candidates)

    # --- the checks after every run -------------------------------------------------------------------------

    def violation(self, when, text):
        self.violations.append('%s (day %d): %s' % (when.isoformat(), (when - START).days, text))

    def check_tls_ca_kept(self):
        """The emulator made its CAs once, under the first simulated date, and restarts keep them."""
        with open(self.emulator.ca_path) as handle:
            pem = handle.read()
        if self.ca_pem is None:
            self.ca_pem = pem
        assert pem == self.ca_pem, 'the emulator restarted with another TLS CA: its state file was not reused'

    def check(self, when, runs, due, logins, state):
        now = when.timestamp()
        for run in runs:
            if run.rc != 0 or any(counts['failed'] or counts['unreachable'] for counts in run.recap.values()):
                self.violation(when, run.failure())
        for subject in (self.module, self.role):
            records = subject.records(state)
            active = [record for record in records.values() if record['status'] == 'Active']
            peak = state['activePeaks'].get('Nip:%s' % subject.nip, {}).get('peak', 0)
            if peak > subject.limit or len(active) > subject.limit:
                self.violation(when, '%s: %d active certificates now, peak %d, over the limit %d'
                               % (subject.label, len(active), peak, subject.limit))
            for record in records.values():
                if record['type'] == 'Offline' and record['status'] in ('Revoked', 'Blocked'):
                    self.violation(when, '%s: Offline certificate %s %s was revoked while valid until %s (reason %s)'
                                   % (subject.label, record['name'], record['serialNumber'], record['validTo'],
                                      record['revocationReason']))
            self.check_login(when, subject, records, logins[subject.label])
            names = [record['name'] for record in records.values()
                     if iso_epoch(record['requestDate']) >= now - 3600]
            for name in sorted(set(names)):
                if names.count(name) > 1:
                    self.violation(when, '%s: %s enrolled %d times in one run' % (subject.label, name, names.count(name)))
        for item in self.declared_at(when):
            self.check_deployed(when, item, state)
        self.check_undeclared(when, state)
        for run, subject in zip(runs, (self.module, self.role)):
            self.check_no_op(when, run, due[run.label], subject, state)

    def check_deployed(self, when, item, state):
        serial = item.deployed_serial()
        if serial is None:
            self.violation(when, '%s: no certificate deployed at %s' % (item.label, item.certificate_path))
            return
        record = item.subject.records(state).get(serial)
        if record is None:
            self.violation(when, '%s: deployed serial %s is unknown to KSeF' % (item.label, serial))
            return
        now = when.timestamp()
        problems = []
        if record['status'] != 'Active':
            problems.append('status %s' % record['status'])
        if not iso_epoch(record['validFrom']) <= now < iso_epoch(record['validTo']):
            problems.append('valid %s to %s' % (record['validFrom'], record['validTo']))
        if (record['name'], record['type']) != (item.name, item.type):
            problems.append('it is %s (%s)' % (record['name'], record['type']))
        if not os.path.exists(item.key_path) or key_spki_sha256(item.key_path) != record['publicKeySha256']:
            problems.append('the key %s does not match it' % item.key_path)
        if problems:
            self.violation(when, '%s: deployed certificate %s: %s' % (item.label, serial, ', '.join(problems)))

    def check_login(self, when, subject, records, login_serial):
        """The run logged in with the certificate the previous run left where the login reads it."""
        if login_serial is None:
            return
        record = records.get(login_serial)
        used = record and record['lastUseDate'] and iso_epoch(record['lastUseDate']) >= when.timestamp() - 60
        if not used:
            self.violation(when, '%s: the run did not log in with the login certificate %s it found at %s (%s)'
                           % (subject.label, login_serial, subject.login[0], record and record['status']))

    def check_undeclared(self, when, state):
        record = self.module.records(state)[self.undeclared_serial]
        expected = 'Expired' if when >= UNDECLARED_EXPIRES else 'Active'
        if record['status'] != expected:
            self.violation(when, 'the undeclared certificate %s reads %s, expected %s'
                           % (self.undeclared_serial, record['status'], expected))

    def check_no_op(self, when, run, due, subject, state):
        """With nothing due, a scheduled run changes nothing, and the emulator records no enrollment or revocation of
        the subject (the two paths run side by side on one emulator: its records tell them apart by subject)."""
        if due or run.rc != 0:
            return
        if run.changed:
            self.violation(when, '%s: nothing was due, yet the run reported changed=%d' % (run.label, run.changed))
        enrolled = [item['name'] for item in state['enrollments'] if item['subjectIdentifier']['value'] == subject.nip
                    and iso_epoch(item['requestDate']) >= when.timestamp() - 60]
        before = subject.records(self.previous_state)
        revoked = [serial for serial, record in subject.records(state).items() if record['status'] in ('Revoked', 'Blocked')
                   and before.get(serial, {}).get('status') not in ('Revoked', 'Blocked')]
        if enrolled or revoked:
            self.violation(when, '%s: nothing was due, yet it enrolled %s and revoked %s' % (run.label, enrolled, revoked))

    def check_renewed_twice(self, state):
        """Not a vacuous simulation: every certificate declared on day 0 went through at least two renewals."""
        for item in self.module_declared + self.role_declared:
            if item.since != START:
                continue
            generations = [record for record in item.subject.records(state).values()
                           if (record['name'], record['type']) == (item.name, item.type)]
            if len(generations) < 3:
                self.violation(END, '%s: %d certificate(s) over the simulation, expected at least 3 (two renewals)'
                               % (item.label, len(generations)))


def test_declared_certificates_stay_valid_through_two_renewals_without_a_person():
    if not os.path.exists(LIBFAKETIME):
        pytest.fail('%s is missing: install the Debian package faketime (make deps-system)' % LIBFAKETIME)
    if not os.path.exists(os.path.join(COLLECTIONS, 'ansible_collections', 'ksef', 'certificates')):
        pytest.fail('build/collections is missing: run `make venv` (it links the collection there)')
    # Not pytest's tmp_path: other pytest runs of the same user prune it, and a failed simulation is kept here.
    root = os.path.join(REPO, 'build', 'lifecycle')
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    simulation = Simulation(root)
    started = time.monotonic()
    when = START
    first = True
    steps = 0
    while when <= END:
        simulation.step(when, first)
        first = False
        steps += 1
        when = simulation.next_date(when)
    clock = Clock(END)
    simulation.emulator.start(clock)
    try:
        state = simulation.emulator.control('/emulator/state')
    finally:
        simulation.emulator.stop()
    simulation.check_renewed_twice(state)
    print('lifecycle: %d scheduled dates over %d simulated days in %.0f s (%.0f s CPU)' % (
        steps, (END - START).days, time.monotonic() - started, children_cpu_seconds()))
    assert not simulation.violations, '%d violation(s) (runs and emulator log kept in %s):\n%s' % (
        len(simulation.violations), root, '\n'.join(simulation.violations))
    shutil.rmtree(root, ignore_errors=True)

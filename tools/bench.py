# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`make bench`: API calls and time of ksef_certificate against the emulator with production limits.

Not a test: it prints a table and writes build/bench.json. Steps:
  1. start a private emulator (production rate limits, --processing-delay 5: KSeF issues a certificate 5 s
     after its enrollment) and make a self-signed TEST seal for a random NIP;
  2. enroll 50 certificates with the "other" rate limits raised (POST /v2/testdata/rate-limits) so setup
     takes seconds, then restore the production limits;
  3. no-op converges of 1, 12 and 50 certificates: calls counted by the emulator (/emulator/requests)
     and by the module (api_calls); goal for 12: <= 6 auth calls and 1 certificate call;
  4. time ratio: the no-op converge of 12 against a play that stats the 12 key files (median of 3 each);
  5. 15 new enrollments with the certificate endpoints lowered to 5/s and 12/min (POST /testdata/rate-limits,
     as users do on KSeF TEST) and default options: goal zero 429 answers and under 100 s (floor about 60 s);
  6. 50 and 100 new Authentication certificates in one task at the published limits (each row in a context
     of its own, so the hour windows start empty): goals for 100 zero 429 answers, at most 250 s (the floor
     is about 185 s: 100 POSTs at 30 a minute, plus the issuing delay) and at most 1.3 certificate-endpoint
     calls per enrollment.
  7. the role ksef.certificates.ksef_deploy over 40 local-connection hosts (each with its own key and
     certificate directories, one key-on-host Authentication certificate each) with -f 10, at the published
     limits in a context of its own (tools/bench_role.yml): goals zero 429 answers and a wall time near the
     floor (40 POSTs at 30 a minute, about 65 s); then the same play again: changed=0, one login and one
     query page for the batch; then, in the same run and interleaved, 3 no-op runs of the role and 3 runs of a
     play that stats each host's key and certificate (tools/bench_role_stat.yml), with -f 10: goal the
     ratio of their medians at most 2.0;
  8. scaling: the role over 200 hosts (--scale-hosts, a context of its own, the certificate endpoints' limits
     raised so that KSeF's hour window does not hide Ansible's share), enrolling, then its no-op and the stat
     play; the per-host seconds against the 40-host rows show whether the cost grows linearly.
  9. a renewal wave: 95 Authentication certificates of a context of its own (enrolled at raised limits, then
     moved 10 days before their end with PUT /testdata/certificates/{serial}) renewed in one task at the
     published limits with 5 free active-certificate slots (KSeF's 100 per NIP): goals zero 429 answers, at most
     100 active certificates at any moment (from the request log: every accepted enrollment counted from its
     POST, every accepted revocation from its answer) and 0 s of outage (no certificate revoked before its
     successor was issued).
Each enrolling row records the calls per endpoint (emulator records) and the calls per enrollment.
Run with the project venv: .venv/bin/python tools/bench.py (or make bench); --only-fleet runs only step 6,
--only-role only steps 7 and 8 (--scale-hosts 0 leaves out step 8), --only-waves only step 9.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

import requests

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(REPO, 'build', 'collections')

PRODUCTION_OTHER = {'perSecond': 10, 'perMinute': 30, 'perHour': 120}
RAISED_OTHER = {'perSecond': 100, 'perMinute': 6000, 'perHour': 100000}
LIMITED_OTHER = {'perSecond': 5, 'perMinute': 12, 'perHour': 120}
FLEET_SIZES = (50, 100)
ROLE_HOSTS = 40
ROLE_FORKS = 10
SCALE_HOSTS = 200
# The role's daily no-op against a plain play that stats the same key and certificate files, same hosts, same -f.
ROLE_STAT_RATIO_MAX = 2.0
ROLE_RATIO_ROUNDS = 3
# The role's enrolling task (its one ksef_certificate call for the batch, login to session close) may exceed
# the enrollment floor by a login, the retrieval and the close; more means it waited on the limits.
ROLE_SLACK = 15
# The renewal wave row: certificates due, and KSeF's active-certificate limit per NIP.
WAVE_CERTIFICATES = 95
ACTIVE_LIMIT = 100
PROCESSING_DELAY = 5.0
READY_TIMEOUT = 60
PLAYBOOK_TIMEOUT = 1800


def log(message):
    print('bench: %s' % message, file=sys.stderr, flush=True)


class Emulator:
    """A private emulator process on 127.0.0.1 (state in WORK/emulator)."""

    def __init__(self, python, work, processing_delay=PROCESSING_DELAY):
        self.python = python
        self.processing_delay = processing_delay
        self.dir = os.path.join(work, 'emulator')
        self.process = None
        self.url = None
        self.ca = os.path.join(self.dir, 'ca.pem')

    def start(self):
        os.makedirs(self.dir)
        ready = os.path.join(self.dir, 'ready')
        with open(os.path.join(self.dir, 'emulator.log'), 'w') as handle:
            self.process = subprocess.Popen(
                [self.python, '-m', 'ksef_emulator', '--host', '127.0.0.1', '--port', '0', '--ready-file', ready,
                 '--state', os.path.join(self.dir, 'state.sqlite'), '--tls-ca-file', self.ca,
                 '--rate-limits', 'production', '--processing-delay', str(self.processing_delay)],
                stdout=handle, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit('bench: the emulator exited; see %s/emulator.log' % self.dir)
            if os.path.exists(ready) and os.path.getsize(ready):
                with open(ready) as handle:
                    self.url = handle.read().strip().rstrip('/')
                if self.url.endswith('/v2'):
                    self.url = self.url[:-3]
                return
            time.sleep(0.2)
        raise SystemExit('bench: the emulator was not ready within %d s' % READY_TIMEOUT)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def get(self, path):
        # REQUESTS_CA_BUNDLE would override a session's verify: pass the CA on every request.
        response = requests.get(self.url + path, verify=self.ca, timeout=30)
        response.raise_for_status()
        return response.json()

    def last_seq(self):
        records = self.get('/emulator/requests')
        return records[-1]['seq'] if records else 0

    def requests_since(self, seq):
        return self.get('/emulator/requests?since=%d' % seq)


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = os.path.join(REPO, 'build', 'bench')
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(self.work)
        self.emulator = Emulator(args.python, self.work, args.processing_delay)
        self.keys = os.path.join(self.work, 'keys')
        os.makedirs(self.keys, mode=0o700)
        self.connection = None
        self.results = {}

    # -- setup ---------------------------------------------------------------------------------

    def make_signer(self, label='seal'):
        """A self-signed TEST seal for a new random NIP: a context of its own (KSeF counts limits per context)."""
        nip = subprocess.check_output([self.args.python, '-m', 'ksef_emulator.testcerts', 'nip'], text=True).strip()
        cert = os.path.join(self.work, label + '.pem')
        key = os.path.join(self.work, label + '.key')
        subprocess.check_call([self.args.python, '-m', 'ksef_emulator.testcerts', 'seal', '--nip', nip,
                               '--cert-out', cert, '--key-out', key], stdout=subprocess.DEVNULL)
        self.connection = {'api_url': self.emulator.url + '/v2', 'ca_path': self.emulator.ca, 'context_id': nip,
                           'auth_certificate_path': cert, 'auth_private_key_path': key}

    def testdata(self, calls):
        """Make TEST-only calls in a short session of its own: calls(client, token)."""
        # The collection's own client logs in; it is importable through build/collections (make venv).
        if COLLECTIONS not in sys.path:
            sys.path.insert(0, COLLECTIONS)
        from ansible_collections.ksef.certificates.plugins.module_utils._auth import KsefAuthenticator
        from ansible_collections.ksef.certificates.plugins.module_utils._http import KsefHttpClient
        client = KsefHttpClient(self.connection['api_url'], ca_path=self.emulator.ca)
        params = dict(self.connection, context_type='nip', verify_certificate_chain=False,
                      auth_subject_identifier_type='certificate_subject')
        auth = KsefAuthenticator(client, params)
        try:
            calls(client, auth.access_token())
        finally:
            auth.close()

    def set_other_limits(self, other):
        """POST /v2/testdata/rate-limits for this context."""
        def post(client, token):
            if other is None:
                client.request('POST', '/testdata/rate-limits/production', token=token)
            else:
                client.request('POST', '/testdata/rate-limits', token=token, json={'rateLimits': {'other': other}})
        self.testdata(post)

    def shorten(self, serials, days):
        """PUT /v2/testdata/certificates/{serial} {validTo}: the certificates end `days` from now."""
        valid_to = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)).strftime(
            '%Y-%m-%dT%H:%M:%SZ')

        def put(client, token):
            for serial in serials:
                client.request('PUT', '/testdata/certificates/{serialNumber}', path_params={'serialNumber': serial},
                               token=token, json={'validTo': valid_to}, expect=(200, 204))
        self.testdata(put)

    def declarations(self, prefix, count):
        return [{'name': '%s-%03d' % (prefix, index),
                 'private_key_path': os.path.join(self.keys, '%s-%03d.key' % (prefix, index)),
                 'certificate_path': os.path.join(self.keys, '%s-%03d.pem' % (prefix, index))}
                for index in range(count)]

    # -- running plays -------------------------------------------------------------------------

    def playbook(self, name, certificates, read_rate_limits=False):
        """Run tools/<name>; return (seconds, result dict of bench_converge or None)."""
        elapsed, _output, result = self.ansible_playbook(
            name, {'connection': self.connection, 'certificates': certificates, 'read_rate_limits': read_rate_limits})
        return elapsed, result

    def ansible_playbook(self, name, variables, options=()):
        """Run tools/<name> with -e @vars.json (variables and result_path); return (seconds, output, result)."""
        result_path = os.path.join(self.work, 'result.json')
        if os.path.exists(result_path):
            os.unlink(result_path)
        variables_path = os.path.join(self.work, 'vars.json')
        with open(variables_path, 'w') as handle:
            json.dump(dict(variables, result_path=result_path), handle)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
                   ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false')
        command = [os.path.join(os.path.dirname(self.args.python), 'ansible-playbook'),
                   os.path.join(REPO, 'tools', name), '-e', '@' + variables_path,
                   '-e', 'ansible_python_interpreter=' + self.args.python] + list(options)
        started = time.monotonic()
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=PLAYBOOK_TIMEOUT, check=False)
        elapsed = time.monotonic() - started
        if done.returncode != 0:
            sys.stderr.write(done.stdout[-4000:])
            raise SystemExit('bench: %s failed (exit %d)' % (name, done.returncode))
        result = None
        if os.path.exists(result_path):
            with open(result_path) as handle:
                result = json.load(handle)
        return elapsed, done.stdout, result

    def converge(self, certificates, read_rate_limits=False):
        """One converge run: wall time, module api_calls, and the emulator's records of the run."""
        seq = self.emulator.last_seq()
        elapsed, result = self.playbook('bench_converge.yml', certificates, read_rate_limits)
        row = calls_of(self.emulator.requests_since(seq))
        row.update({
            'seconds': round(elapsed, 2),
            'api_calls': result['api_calls'],
            'changed': result['changed'],
            'actions': sorted(set(result['actions'])),
            'quota': result.get('quota'),
        })
        return row

    def stat_hosts(self, inventory):
        """One run of the plain stat play over the bench inventory with -f ROLE_FORKS: wall time."""
        elapsed, _output, _result = self.ansible_playbook(
            'bench_role_stat.yml', {}, ['-i', inventory, '-f', str(self.args.role_forks)])
        return round(elapsed, 2)

    def deploy(self, inventory):
        """One run of the role over the bench inventory with -f ROLE_FORKS: wall time, calls, changed hosts."""
        seq = self.emulator.last_seq()
        connection = dict(self.connection, context_type='nip', verify_certificate_chain=False)
        elapsed, output, result = self.ansible_playbook(
            'bench_role.yml', {'ksef_connection': connection}, ['-i', inventory, '-f', str(self.args.role_forks)])
        records = self.emulator.requests_since(seq)
        row = calls_of(records)
        # The enrolling task (ksef_certificate) logs in after the role's ksef_certificate_info.
        logins = [index for index, record in enumerate(records) if record['route'] == '/auth/challenge']
        # PLAY RECAP lines: "host : ok=N changed=N unreachable=N failed=N ..."
        recap = dict((host, int(changed)) for host, changed in
                     re.findall(r'^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)', output, re.MULTILINE)
                     if host != 'localhost')
        row.update({
            'seconds': round(elapsed, 2),
            'api_calls': result['api_calls'],
            'hosts': len(recap),
            'hosts_changed': sum(1 for changed in recap.values() if changed),
            'changed': any(recap.values()),
            'actions': sorted(set(result['deployed'])),
            'logins': row['calls_by_endpoint'].get('POST /auth/challenge', 0),
            'query_pages': row['calls_by_endpoint'].get('POST /certificates/query', 0),
            # The KSeF part of the play (first to last API call) and the enrolling task alone (its login to
            # its last call); the rest of the wall time is Ansible's work on the hosts (the no-op rerun shows it).
            'ksef_seconds': span_seconds(records),
            'enrolling_task_seconds': span_seconds(records[logins[-1]:]) if len(logins) > 1 else None,
        })
        return row

    # -- the measurements ----------------------------------------------------------------------

    def run(self):
        self.emulator.start()
        try:
            only = self.args.only_fleet or self.args.only_role or self.args.only_waves or self.args.only_scale
            if not only:
                self.first_rows()
            for count in (self.args.fleet_sizes if self.args.only_fleet or not only else []):
                log('%d new certificates at the published limits, %.0f s issuing delay (takes minutes)...'
                    % (count, self.args.processing_delay))
                self.make_signer('fleet-%d' % count)
                row = self.converge(self.declarations('fleet%d' % count, count))
                row['floor_seconds'] = round(self.floor_seconds(count), 1)
                self.results['enroll_%d_published' % count] = row
                log('  %.1f s, %d 429, %s certificate calls per enrollment'
                    % (row['seconds'], row['http_429'], row['certificate_calls_per_enrollment']))
            if self.args.only_role or not only:
                self.role_rows()
            if (self.args.only_role or self.args.only_scale or not only) and self.args.scale_hosts:
                self.scale_rows()
            if self.args.only_waves or not only:
                self.wave_rows()
        finally:
            self.emulator.stop()
        goals = self.results['goals'] = {}
        waves = self.results.get('renew_%d_waves' % WAVE_CERTIFICATES)
        if waves is not None:
            prefix = 'renew_%d_waves_' % WAVE_CERTIFICATES
            goals.update({
                prefix + 'zero_429': waves['http_429'] == 0,
                prefix + 'peak_active_max_%d' % ACTIVE_LIMIT: waves['peak_active'] <= ACTIVE_LIMIT,
                prefix + 'outage_0_s': waves['outage_seconds'] == 0,
                prefix + 'all_renewed': waves['actions'] == ['renewed'],
            })
        if not only:
            goals.update({
                'noop_12_auth_calls_max_6': self.results['noop']['12']['auth_calls'] <= 6,
                'noop_12_certificate_calls_max_1': self.results['noop']['12']['certificate_calls'] <= 1,
                'enroll_15_zero_429': self.results['enroll_15_lowered']['http_429'] == 0,
                'enroll_15_under_100_s': self.results['enroll_15_lowered']['seconds'] < 100,
            })
        fleet = self.results.get('enroll_100_published')
        if fleet is not None:
            goals.update({
                'enroll_100_zero_429': fleet['http_429'] == 0,
                'enroll_100_max_250_s': fleet['seconds'] <= 250,
                'enroll_100_max_1_3_certificate_calls_per_enrollment': fleet['certificate_calls_per_enrollment'] <= 1.3,
            })
        role = self.results.get('role_%d_published' % self.args.role_hosts)
        if role is not None:
            again = self.results['role_%d_again' % self.args.role_hosts]
            prefix = 'role_%d_' % self.args.role_hosts
            goals.update({
                prefix + 'zero_429': role['http_429'] == 0 and again['http_429'] == 0,
                prefix + 'enrolling_task_max_floor_plus_%d_s' % ROLE_SLACK:
                    (role['enrolling_task_seconds'] or 0) <= role['floor_seconds'] + ROLE_SLACK,
                prefix + 'again_changed_0': again['hosts_changed'] == 0,
                prefix + 'again_max_1_login_1_query_page': again['logins'] <= 1 and again['query_pages'] <= 1,
                prefix + 'noop_over_stat_max_%.1f' % ROLE_STAT_RATIO_MAX:
                    self.results['role_stat_ratio']['ratio'] <= ROLE_STAT_RATIO_MAX,
            })
        return self.results

    def wave_rows(self):
        """95 Authentication certificates due with 5 free active-certificate slots: one task, published limits."""
        count = WAVE_CERTIFICATES
        log('a renewal wave: %d Authentication certificates due, %d free slots, published limits (takes minutes)...'
            % (count, ACTIVE_LIMIT - count))
        self.make_signer('waves')
        declarations = self.declarations('wave', count)
        self.set_other_limits(RAISED_OTHER)
        self.converge(declarations)
        serials = [entry['serialNumber'] for entry in self.emulator.get('/emulator/state')['certificates']
                   if entry['subjectIdentifier']['value'] == self.connection['context_id'] and entry['status'] == 'Active']
        self.shorten(serials, 10)
        self.set_other_limits(None)
        seq = self.emulator.last_seq()
        row = self.converge(declarations)
        records = self.emulator.requests_since(seq)
        state = [entry for entry in self.emulator.get('/emulator/state')['certificates']
                 if entry['subjectIdentifier']['value'] == self.connection['context_id']]
        row.update({
            'certificates': count,
            'free_slots': ACTIVE_LIMIT - len(serials),
            'waves': len((row.get('quota') or {}).get('waves_sent') or []),
            'peak_active': peak_active(records, len(serials)),
            'outage_seconds': outage_seconds(records, state),
            'floor_seconds': round(self.floor_seconds(count), 1),
        })
        self.results['renew_%d_waves' % count] = row
        log('  %.1f s, %d 429, peak %d active, %d waves, outage %s s'
            % (row['seconds'], row['http_429'], row['peak_active'], row['waves'], row['outage_seconds']))

    def bench_inventory(self, label, count):
        """An inventory of count local-connection hosts, each with its own root directory."""
        root = os.path.join(self.work, label + '-hosts')
        hosts = ['bench-%03d.example' % index for index in range(count)]
        inventory = os.path.join(self.work, label + '-inventory.ini')
        with open(inventory, 'w') as handle:
            handle.write('[ksef_bench_hosts]\n')
            for host in hosts:
                handle.write('%s ansible_connection=local host_root=%s\n' % (host, os.path.join(root, host)))
        return root, hosts, inventory

    def enroll_hosts(self, label, count):
        """The role's first (enrolling) run over count new hosts; checks every host's key and certificate."""
        root, hosts, inventory = self.bench_inventory(label, count)
        first = self.deploy(inventory)
        first['floor_seconds'] = round(self.floor_seconds(count), 1)
        missing = [host for host in hosts if not self.deployed_files(os.path.join(root, host))]
        if first['enrollments'] != count or missing:
            raise SystemExit('bench: the role enrolled %d certificates for %d hosts; without key and certificate: %s'
                             % (first['enrollments'], count, ', '.join(missing) or '-'))
        return first, inventory

    def noop_against_stat(self, inventory, rounds):
        """The role's no-op and the stat play, interleaved in this run (medians): their seconds and ratio."""
        noop_runs, stat_runs = [], []
        for _round in range(rounds):
            stat_runs.append(self.stat_hosts(inventory))
            run = self.deploy(inventory)
            if run['hosts_changed']:
                raise SystemExit('bench: the no-op run of the role changed %d hosts' % run['hosts_changed'])
            noop_runs.append(run['seconds'])
        noop, stat = statistics.median(noop_runs), statistics.median(stat_runs)
        return {'role_noop_seconds': round(noop, 2), 'stat_seconds': round(stat, 2), 'ratio': round(noop / stat, 2),
                'role_noop_runs': noop_runs, 'stat_runs': stat_runs, 'load_average': [round(value, 2) for value in os.getloadavg()]}

    def role_rows(self):
        """The role over ROLE_HOSTS local hosts with -f ROLE_FORKS (a context of its own), then the same play again,
        then its no-op against the stat play of the same files."""
        count = self.args.role_hosts
        log('the role ksef_deploy over %d hosts, -f %d, key on the host, published limits (takes minutes)...'
            % (count, self.args.role_forks))
        self.make_signer('role-%d' % count)
        first, inventory = self.enroll_hosts('role', count)
        self.results['role_%d_published' % count] = first
        log('  %.1f s, %d 429, %d logins, %s certificate calls per enrollment'
            % (first['seconds'], first['http_429'], first['logins'], first['certificate_calls_per_enrollment']))
        log('the same play again (no-op)...')
        again = self.deploy(inventory)
        self.results['role_%d_again' % count] = again
        log('  %.1f s, %d hosts changed, %d logins, %d query pages'
            % (again['seconds'], again['hosts_changed'], again['logins'], again['query_pages']))
        log('the no-op against a play that stats the same key and certificate files (%d rounds, interleaved)...'
            % ROLE_RATIO_ROUNDS)
        ratio = self.noop_against_stat(inventory, ROLE_RATIO_ROUNDS)
        ratio['hosts'] = count
        self.results['role_stat_ratio'] = ratio
        log('  no-op %.1f s, stat %.1f s: ratio %.2f (load %s)'
            % (ratio['role_noop_seconds'], ratio['stat_seconds'], ratio['ratio'], ratio['load_average']))

    def scale_rows(self):
        """The role over SCALE_HOSTS hosts: enrolling (certificate limits raised), its no-op and the stat play."""
        count = self.args.scale_hosts
        log('the role ksef_deploy over %d hosts, -f %d, certificate limits raised (takes minutes)...'
            % (count, self.args.role_forks))
        self.make_signer('scale-%d' % count)
        self.set_other_limits(RAISED_OTHER)
        # KSeF keeps at most 100 active certificates per NIP (300 enrollments): raised for this context (TEST).
        self.testdata(lambda client, token: client.request(
            'POST', '/testdata/limits/subject/certificate', token=token, expect=(200, 204),
            json={'subjectIdentifierType': 'Nip', 'enrollment': {'maxEnrollments': count * 3},
                  'certificate': {'maxCertificates': count * 2}}))
        first, inventory = self.enroll_hosts('scale', count)
        first['floor_seconds'] = None
        self.results['scale_%d_enroll' % count] = first
        log('  enrolling %.1f s, %d 429' % (first['seconds'], first['http_429']))
        ratio = self.noop_against_stat(inventory, 1)
        ratio['hosts'] = count
        self.results['scale_%d_ratio' % count] = ratio
        log('  no-op %.1f s, stat %.1f s: ratio %.2f (load %s)'
            % (ratio['role_noop_seconds'], ratio['stat_seconds'], ratio['ratio'], ratio['load_average']))

    @staticmethod
    def deployed_files(host_root):
        """The key and certificate the role wrote under a bench host's root (both must exist and be non-empty)."""
        found = []
        for sub in ('private', 'certs'):
            directory = os.path.join(host_root, sub)
            names = os.listdir(directory) if os.path.isdir(directory) else []
            found += [os.path.join(directory, name) for name in names
                      if not name.endswith(('.next', '.csr')) and os.path.getsize(os.path.join(directory, name))]
        return found if len(found) == 2 else []

    def floor_seconds(self, count):
        """The wall time the published enrollment limits (10/s, 30/min) set, plus the issuing delay."""
        minutes, rest = divmod(count - 1, PRODUCTION_OTHER['perMinute'])
        return minutes * 60 + (rest // PRODUCTION_OTHER['perSecond']) + self.args.processing_delay

    def first_rows(self):
        """No-op converges, the time ratio and the lowered-limits row (one context)."""
        self.make_signer()
        log('emulator at %s, NIP %s' % (self.emulator.url, self.connection['context_id']))
        bench_set = self.declarations('bench', 50)

        log('enrolling 50 certificates with the rate limits raised (setup, not measured)...')
        self.set_other_limits(RAISED_OTHER)
        setup = self.converge(bench_set, read_rate_limits=True)
        log('  enrolled in %.1f s (%s)' % (setup['seconds'], ', '.join(setup['actions'])))
        self.set_other_limits(None)

        noop = {}
        for count in (1, 12, 50):
            log('no-op converge of %d certificate(s)...' % count)
            noop[count] = self.converge(bench_set[:count])
            if noop[count]['changed']:
                raise SystemExit('bench: the no-op converge of %d changed something: %s' % (count, noop[count]))
        self.results['noop'] = dict((str(count), value) for count, value in noop.items())

        log('time ratio: no-op converge of 12 against a 12-item ansible.builtin.stat play (3 runs each)...')
        ksef_times, stat_times = [], []
        for _round in range(3):
            ksef_times.append(self.converge(bench_set[:12])['seconds'])
            stat_times.append(self.playbook('bench_stat.yml', bench_set[:12])[0])
        self.results['time_ratio'] = {
            'ksef_noop_12_seconds': round(statistics.median(ksef_times), 2),
            'stat_12_seconds': round(statistics.median(stat_times), 2),
            'ratio': round(statistics.median(ksef_times) / statistics.median(stat_times), 2),
        }

        log('15 enrollments, certificate endpoints lowered to 5/s and 12/min, default options (about a minute)...')
        self.make_signer('limited')
        self.set_other_limits(LIMITED_OTHER)
        limited = self.converge(self.declarations('limited', 15))
        limited['floor_seconds'] = 60
        self.results['enroll_15_lowered'] = limited


def span_seconds(records):
    """Seconds from the first to the last of these emulator records (None for none)."""
    times = [datetime.datetime.fromisoformat(record['time']) for record in records]
    return round((max(times) - min(times)).total_seconds(), 1) if times else None


def peak_active(records, active_before):
    """Most active certificates at once: every accepted enrollment counted from its POST (an upper bound), every
    accepted revocation from its answer, in the order the emulator received them."""
    count = peak = active_before
    for record in records:
        if record['method'] == 'POST' and record['route'] == '/certificates/enrollments' and record['status'] == 202:
            count += 1
        elif record['route'] == '/certificates/{certificateSerialNumber}/revoke' and record['status'] == 204:
            count -= 1
        peak = max(peak, count)
    return peak


def outage_seconds(records, state):
    """Seconds a certificate name had no active certificate: from the revocation of a predecessor to the moment its
    successor was issued (validFrom), summed over the names (0 when every successor came first)."""
    revoked_at = {}
    for record in records:
        if record['route'] == '/certificates/{certificateSerialNumber}/revoke' and record['status'] == 204:
            revoked_at[record['path'].rstrip('/').split('/')[-2]] = datetime.datetime.fromisoformat(record['time'])
    total = 0.0
    for name in set(entry['name'] for entry in state):
        entries = [entry for entry in state if entry['name'] == name]
        successors = [datetime.datetime.fromisoformat(entry['validFrom']) for entry in entries if entry['status'] == 'Active']
        for entry in entries:
            if entry['serialNumber'] in revoked_at:
                issued = min(successors) if successors else None
                gap = (issued - revoked_at[entry['serialNumber']]).total_seconds() if issued else float('inf')
                total += max(0.0, gap)
    return round(total, 1)


def calls_of(records):
    """What the emulator recorded for a run: calls per endpoint, by group, 429 answers, calls per enrollment."""
    auth = [r for r in records if (r['route'] or '').startswith('/auth/')]
    certificate = [r for r in records if (r['route'] or '').startswith('/certificates/')]
    by_endpoint = {}
    for record in records:
        endpoint = '%s %s' % (record['method'], record['route'] or record['path'])
        by_endpoint[endpoint] = by_endpoint.get(endpoint, 0) + 1
    enrollments = by_endpoint.get('POST /certificates/enrollments', 0)
    return {
        'calls_by_endpoint': by_endpoint,
        'enrollments': enrollments,
        'certificate_calls_per_enrollment': round(len(certificate) / float(enrollments), 2) if enrollments else None,
        'emulator_requests': len(records),
        'auth_calls': len(auth),
        'certificate_calls': len(certificate),
        'http_429': sum(1 for r in records if r['status'] == 429),
    }


def table(results):
    lines = ['', 'ksef.certificates benchmark (emulator, production rate limits unless noted, %.0f s issuing delay)'
             % results.get('processing_delay', PROCESSING_DELAY), '']
    lines.append('%-52s %8s %6s %6s %6s %6s %9s' % ('run', 'seconds', 'calls', 'auth', 'cert', '429', 'cert/enr'))
    lines.append('-' * 100)
    rows = []
    if 'noop' in results:
        rows += [('no-op converge, 1 certificate', results['noop']['1']),
                 ('no-op converge, 12 certificates', results['noop']['12']),
                 ('no-op converge, 50 certificates', results['noop']['50']),
                 ('enroll 15, cert endpoints 5/s 12/min, default options', results['enroll_15_lowered'])]
    for count in FLEET_SIZES:
        if 'enroll_%d_published' % count in results:
            rows.append(('enroll %d, published limits (10/s 30/min 120/h)' % count,
                         results['enroll_%d_published' % count]))
    wave_key = 'renew_%d_waves' % WAVE_CERTIFICATES
    if wave_key in results:
        rows.append(('renew %d Authentication, %d free slots, published limits'
                     % (WAVE_CERTIFICATES, results[wave_key]['free_slots']), results[wave_key]))
    for key in sorted(results):
        match = re.match(r'role_(\d+)_published$', key)
        if match:
            again = results['role_%s_again' % match.group(1)]
            rows += [('role ksef_deploy, %s hosts, -f %d, published limits' % (match.group(1), results['role_forks']),
                      results[key]),
                     ('role ksef_deploy, %s hosts, the same play again' % match.group(1), again)]
    for label, row in rows:
        per = row.get('certificate_calls_per_enrollment')
        lines.append('%-52s %8.1f %6d %6d %6d %6d %9s' % (label, row['seconds'], row['api_calls'], row['auth_calls'],
                                                          row['certificate_calls'], row['http_429'],
                                                          '%.2f' % per if per is not None else '-'))
    lines.append('')
    for label, row in rows:
        if row.get('enrollments'):
            lines.append('%s, calls per endpoint: %s' % (label, ', '.join(
                '%s %d' % (endpoint, calls) for endpoint, calls in sorted(row['calls_by_endpoint'].items()))))
    for label, row in rows:
        if 'peak_active' in row:
            lines.append('%s: %d waves, peak %d active certificates (limit %d), outage %s s, floor %s s'
                         % (label, row['waves'], row['peak_active'], ACTIVE_LIMIT, row['outage_seconds'],
                            row['floor_seconds']))
    for label, row in rows:
        if 'hosts_changed' in row:
            lines.append('%s: %d of %d hosts changed, %d login(s), %d query page(s), KSeF calls over %s s%s'
                         % (label, row['hosts_changed'], row['hosts'], row['logins'], row['query_pages'],
                            row['ksef_seconds'], ', the enrolling task %s s (floor %s s)'
                            % (row['enrolling_task_seconds'], row['floor_seconds'])
                            if row.get('enrolling_task_seconds') else ''))
    role_ratio = results.get('role_stat_ratio')
    scale_rows = ([(role_ratio['hosts'], role_ratio)] if role_ratio else []) + [
        (results[key]['hosts'], results[key]) for key in sorted(results) if re.match(r'scale_\d+_ratio$', key)]
    if scale_rows:
        lines.append('')
        title = 'role no-op against a stat play, -f %d' % results['role_forks']
        lines.append('%-52s %8s %8s %6s %9s' % (title, 'no-op s', 'stat s', 'ratio', 's/host'))
        for hosts, row in scale_rows:
            lines.append('%-52s %8.1f %8.1f %6.2f %9.3f' % ('%d hosts (load %s)' % (hosts, ' '.join(
                '%.1f' % value for value in row['load_average'])), row['role_noop_seconds'], row['stat_seconds'],
                row['ratio'], row['role_noop_seconds'] / hosts))
    for key in sorted(results):
        match = re.match(r'scale_(\d+)_enroll$', key)
        if match:
            hosts = int(match.group(1))
            lines.append('enrolling run, %d hosts (certificate limits raised): %.1f s, %.3f s/host'
                         % (hosts, results[key]['seconds'], results[key]['seconds'] / hosts))
    if 'time_ratio' in results:
        ratio = results['time_ratio']
        lines.append('')
        lines.append('time ratio, no-op converge of 12 / 12-item stat play: %.2f (%.2f s / %.2f s, medians of 3)'
                     % (ratio['ratio'], ratio['ksef_noop_12_seconds'], ratio['stat_12_seconds']))
    lines.append('')
    for goal, met in sorted(results['goals'].items()):
        lines.append('goal %-55s %s' % (goal, 'met' if met else 'NOT MET'))
    lines.append('')
    lines.append('calls: HTTP requests the module counted (api_calls); auth/cert/429: what the emulator recorded; '
                 'cert/enr: certificate-endpoint calls per enrollment')
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--python', default=os.path.join(REPO, '.venv', 'bin', 'python'),
                        help='interpreter with ansible-core and ksef_emulator (default .venv/bin/python)')
    parser.add_argument('--output', default=os.path.join(REPO, 'build', 'bench.json'))
    parser.add_argument('--processing-delay', type=float, default=PROCESSING_DELAY,
                        help='seconds the emulator takes to issue a certificate (default %(default)s)')
    parser.add_argument('--fleet-sizes', default=','.join(str(n) for n in FLEET_SIZES),
                        help='sizes of the enrollment rows at the published limits (default %(default)s)')
    parser.add_argument('--only-fleet', action='store_true', help='only the enrollment rows at the published limits')
    parser.add_argument('--only-role', action='store_true', help='only the rows of the role ksef_deploy')
    parser.add_argument('--only-scale', action='store_true', help='only the scaling rows of the role (--scale-hosts)')
    parser.add_argument('--only-waves', action='store_true', help='only the renewal-wave row (95 due, 5 free slots)')
    parser.add_argument('--role-hosts', type=int, default=ROLE_HOSTS,
                        help='hosts of the role rows (default %(default)s)')
    parser.add_argument('--scale-hosts', type=int, default=SCALE_HOSTS,
                        help='hosts of the scaling rows of the role (default %(default)s; 0 leaves them out)')
    parser.add_argument('--role-forks', type=int, default=ROLE_FORKS,
                        help='ansible-playbook -f of the role rows (default %(default)s)')
    args = parser.parse_args()
    args.fleet_sizes = [int(n) for n in args.fleet_sizes.split(',') if n.strip()]
    results = Bench(args).run()
    results['processing_delay'] = args.processing_delay
    results['role_forks'] = args.role_forks
    with open(args.output, 'w') as handle:
        json.dump(results, handle, indent=2, sort_keys=True)
        handle.write('\n')
    print(table(results))
    print('\nwritten to %s' % os.path.relpath(args.output, REPO))
    return 0 if all(results['goals'].values()) else 1


if __name__ == '__main__':
    sys.exit(main())

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
Each enrolling row records the calls per endpoint (emulator records) and the calls per enrollment.
Run with the project venv: .venv/bin/python tools/bench.py (or make bench); --only-fleet skips steps 2-5.
"""

import argparse
import json
import os
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

    def set_other_limits(self, other):
        """POST /v2/testdata/rate-limits for this context (a short session of its own)."""
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
            if other is None:
                client.request('POST', '/testdata/rate-limits/production', token=auth.access_token())
            else:
                client.request('POST', '/testdata/rate-limits', token=auth.access_token(),
                               json={'rateLimits': {'other': other}})
        finally:
            auth.close()

    def declarations(self, prefix, count):
        return [{'name': '%s-%03d' % (prefix, index),
                 'private_key_path': os.path.join(self.keys, '%s-%03d.key' % (prefix, index)),
                 'certificate_path': os.path.join(self.keys, '%s-%03d.pem' % (prefix, index))}
                for index in range(count)]

    # -- running plays -------------------------------------------------------------------------

    def playbook(self, name, certificates, read_rate_limits=False):
        """Run tools/<name>; return (seconds, result dict of bench_converge or None)."""
        result_path = os.path.join(self.work, 'result.json')
        if os.path.exists(result_path):
            os.unlink(result_path)
        variables = os.path.join(self.work, 'vars.json')
        with open(variables, 'w') as handle:
            json.dump({'connection': self.connection, 'certificates': certificates, 'result_path': result_path,
                       'read_rate_limits': read_rate_limits}, handle)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
                   ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false')
        command = [os.path.join(os.path.dirname(self.args.python), 'ansible-playbook'),
                   os.path.join(REPO, 'tools', name), '-e', '@' + variables,
                   '-e', 'ansible_python_interpreter=' + self.args.python]
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
        return elapsed, result

    def converge(self, certificates, read_rate_limits=False):
        """One converge run: wall time, module api_calls, and the emulator's records of the run."""
        seq = self.emulator.last_seq()
        elapsed, result = self.playbook('bench_converge.yml', certificates, read_rate_limits)
        records = self.emulator.requests_since(seq)
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
            'seconds': round(elapsed, 2),
            'api_calls': result['api_calls'],
            'changed': result['changed'],
            'actions': sorted(set(result['actions'])),
            'emulator_requests': len(records),
            'auth_calls': len(auth),
            'certificate_calls': len(certificate),
            'http_429': sum(1 for r in records if r['status'] == 429),
        }

    # -- the measurements ----------------------------------------------------------------------

    def run(self):
        self.emulator.start()
        try:
            if not self.args.only_fleet:
                self.first_rows()
            for count in self.args.fleet_sizes:
                log('%d new certificates at the published limits, %.0f s issuing delay (takes minutes)...'
                    % (count, self.args.processing_delay))
                self.make_signer('fleet-%d' % count)
                row = self.converge(self.declarations('fleet%d' % count, count))
                row['floor_seconds'] = round(self.floor_seconds(count), 1)
                self.results['enroll_%d_published' % count] = row
                log('  %.1f s, %d 429, %s certificate calls per enrollment'
                    % (row['seconds'], row['http_429'], row['certificate_calls_per_enrollment']))
        finally:
            self.emulator.stop()
        goals = self.results['goals'] = {}
        if not self.args.only_fleet:
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
        return self.results

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
    args = parser.parse_args()
    args.fleet_sizes = [int(n) for n in args.fleet_sizes.split(',') if n.strip()]
    results = Bench(args).run()
    results['processing_delay'] = args.processing_delay
    with open(args.output, 'w') as handle:
        json.dump(results, handle, indent=2, sort_keys=True)
        handle.write('\n')
    print(table(results))
    print('\nwritten to %s' % os.path.relpath(args.output, REPO))
    return 0 if all(results['goals'].values()) else 1


if __name__ == '__main__':
    sys.exit(main())

# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The provision and report playbooks run the way AWX runs them: ansible-runner, a project with one-line
playbooks that import the collection's, and the KSeF credential injected from docs/awx/credential-type.yml
(env and file injectors rendered as AWX renders them, awx_injectors.py), against a private emulator.

1. A PKCS#12 seal, pasted into the credential as Base64, enrolls the declared Authentication certificate
   (controller-side key); the report writes Prometheus metrics that prometheus_client's parser reads.
2. The self-renewing login: the credential now carries that KSeF certificate and key (as AWX injects
   them: temporary files). A run that renews it keeps the superseded one active and says why.
3. The same renewal with the login read from the declared files installs the new pair, then revokes.
4. With ksef_login_credential_name and a controller credential, the renewal writes the new pair into the AWX
   credential through the real awx.awx.credential module (against fake_controller.py, which records the calls),
   keeping the inputs it does not change, then revokes the superseded certificate.
5. A controller-kept shared certificate whose key directory is not persistent (inside each job's private data
   directory): the second job, checked and real, fails with what to do and never enrolls again; the revoke
   playbook then runs with the answers of docs/awx/surveys/revoke.json.
The project playbooks are docs/awx/project's. The Prometheus file goes to a node_exporter textfile directory on
an inventory host (ksef_report_prometheus_host).
Run: make awx-tests (installs awx.awx for test 4, starts its own emulator, about 60 s).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml
from cryptography import x509

ansible_runner = pytest.importorskip('ansible_runner', reason='ansible-runner is in requirements/dev.txt')
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402 pylint: disable=wrong-import-position

sys.path.insert(0, os.path.dirname(__file__))
import awx_injectors  # noqa: E402 pylint: disable=wrong-import-position
import fake_controller  # noqa: E402 pylint: disable=wrong-import-position

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
COLLECTIONS = os.path.join(REPO, 'build', 'collections')
# awx.awx, taken from the `ansible` package on PyPI by `make awx-collection` (tests/awx/awx_collection.py).
AWX_COLLECTIONS = os.path.join(REPO, 'build', 'awx-collections')
PROJECT = os.path.join(REPO, 'docs', 'awx', 'project')
VENV_BIN = os.path.dirname(sys.executable)
LOGIN_NAME = 'awx-login'


def load_yaml(path):
    with open(path, encoding='utf-8') as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope='module')
def emulator(tmp_path_factory):
    """tools/with-emulator.sh around a command that publishes the emulator's variables and waits for stdin."""
    if not os.path.exists(os.path.join(COLLECTIONS, 'ansible_collections', 'ksef', 'certificates')):
        pytest.fail('build/collections is missing: run `make venv` (it links the collection there)')
    directory = tmp_path_factory.mktemp('emulator')
    published = directory / 'published.json'
    script = ('import json, os, sys; json.dump({k: v for k, v in os.environ.items() if k.startswith("KSEF_EMULATOR_")}, '
              'open(%r, "w")); sys.stdin.read()' % str(published))
    process = subprocess.Popen([os.path.join(REPO, 'tools', 'with-emulator.sh'), '--python', sys.executable,
                                '--dir', str(directory), '--processing-delay', '0.2', '--',
                                sys.executable, '-c', script], stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not published.exists() or not published.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail('the emulator did not start; see %s/emulator.log' % directory)
            time.sleep(0.1)
        time.sleep(0.1)  # json.dump has finished writing once the file is closed; read it again to be sure
        yield json.loads(published.read_text())
    finally:
        process.stdin.close()
        process.wait(timeout=30)


def emulator_state(emulator):
    context = ssl.create_default_context(cafile=emulator['KSEF_EMULATOR_CA'])
    with urllib.request.urlopen(emulator['KSEF_EMULATOR_URL'] + '/emulator/state', context=context) as answer:
        return json.loads(answer.read().decode('utf-8'))


def certificates_of(emulator, nip):
    return dict((cert['serialNumber'], cert) for cert in emulator_state(emulator)['certificates']
                if cert['subjectIdentifier']['value'] == nip)


@pytest.fixture(scope='module')
def subject(emulator, tmp_path_factory):
    """A random NIP, its PKCS#12 seal (Base64, as pasted into AWX) and the passphrase."""
    directory = tmp_path_factory.mktemp('seal')
    python = emulator['KSEF_EMULATOR_PYTHON']
    nip = subprocess.run([python, '-m', 'ksef_emulator.testcerts', 'nip'], check=True, capture_output=True,
                         text=True).stdout.strip()
    passphrase = 'p12-' + base64.b32encode(os.urandom(10)).decode('ascii')
    p12 = directory / 'seal.p12'
    subprocess.run([python, '-m', 'ksef_emulator.testcerts', 'seal', '--nip', nip, '--pkcs12-out', str(p12),
                    '--pkcs12-passphrase', passphrase], check=True, capture_output=True)
    return {'nip': nip, 'pkcs12_b64': base64.b64encode(p12.read_bytes()).decode('ascii'), 'passphrase': passphrase}


class AwxJob:
    """Job template, inventory and controller-side state; each run gets a fresh private data directory, as an AWX
    job does (ansible-runner would otherwise reuse the env/envvars and env/extravars of the first run)."""

    def __init__(self, root, emulator, nip):
        self.root = root
        self.emulator = emulator
        self.nip = nip
        self.credential_type = load_yaml(os.path.join(REPO, 'docs', 'awx', 'credential-type.yml'))
        self.controller_dir = str(root / 'controller-keys')
        self.summary_path = str(root / 'summary.json')
        self.runs = 0
        host_root = root / 'host'
        self.inventory = root / 'inventory.yml'
        self.inventory.write_text(yaml.safe_dump({'all': {'hosts': {'erp.example': {
            'ansible_connection': 'local',
            'ansible_python_interpreter': sys.executable,
            'ksef_deploy_key_dir': str(host_root / 'private'),
            'ksef_deploy_certificate_dir': str(host_root / 'certs'),
            'ksef_deploy_controller_key_dir': self.controller_dir,
            'ksef_deploy_certificates': [{'name': LOGIN_NAME, 'type': 'authentication', 'key_location': 'controller',
                                          'renew_before_days': 30}],
        }, 'metrics.example': {
            # The host running node_exporter: the report writes its .prom file there (local here, as the test has
            # one machine; the play reaches it by delegation like any inventory host).
            'ansible_connection': 'local',
            'ansible_python_interpreter': sys.executable,
        }}}}))

    @property
    def login_certificate_path(self):
        return os.path.join(self.controller_dir, LOGIN_NAME + '-authentication.crt')

    @property
    def login_key_path(self):
        return os.path.join(self.controller_dir, LOGIN_NAME + '-authentication.key')

    def set_renew_before_days(self, days):
        inventory = load_yaml(str(self.inventory))
        inventory['all']['hosts']['erp.example']['ksef_deploy_certificates'][0]['renew_before_days'] = days
        self.inventory.write_text(yaml.safe_dump(inventory))

    def inputs(self, **signer):
        """Credential inputs: the emulator as a private endpoint (API URL and its CA), the subject, the signer."""
        with open(self.emulator['KSEF_EMULATOR_CA'], encoding='ascii') as handle:
            api_ca = handle.read()
        inputs = {'environment': 'test', 'api_url': self.emulator['KSEF_EMULATOR_API_URL'], 'api_ca': api_ca,
                  'context_type': 'nip', 'context_id': self.nip}
        inputs.update(signer)
        return inputs

    def run(self, playbook, credential_inputs=None, env=None, extravars=None, inventory=None, check=False,
            expect_failure=False, job_extravars=None):
        """ansible-runner with the credential's rendered env (and files in <private data dir>/env), the project of
        docs/awx/project. job_extravars(private_data_dir) adds extra vars that name the job's own directory."""
        envvars = {
            # What the execution environment provides: the collection (and awx.awx); the seals are self-signed TEST ones.
            'ANSIBLE_COLLECTIONS_PATH': COLLECTIONS + os.pathsep + AWX_COLLECTIONS,
            'PATH': VENV_BIN + os.pathsep + os.environ.get('PATH', ''),
            'KSEF_VERIFY_CERTIFICATE_CHAIN': 'false',
            'ANSIBLE_NOCOLOR': '1',
        }
        self.runs += 1
        private_data_dir = self.root / ('job-%d' % self.runs)
        private_data_dir.mkdir(parents=True)
        shutil.copytree(PROJECT, str(private_data_dir / 'project'))
        if credential_inputs is not None:
            rendered = awx_injectors.render(self.credential_type, credential_inputs, str(private_data_dir))
            envvars.update(rendered['env'])
        envvars.update(env or {})
        extravars = dict(extravars or {}, ksef_provision_summary_path=self.summary_path)
        extravars.update(job_extravars(private_data_dir) if job_extravars else {})
        result = ansible_runner.run(private_data_dir=str(private_data_dir), playbook=playbook,
                                    inventory=str(inventory or self.inventory), envvars=envvars, extravars=extravars,
                                    cmdline='--check' if check else None, quiet=True)
        output = result.stdout.read()
        if expect_failure:
            assert result.status == 'failed' and result.rc != 0, output[-4000:]
        else:
            assert result.status == 'successful' and result.rc == 0, output[-4000:]
        return result, output


def login_entry(job):
    """What the role reports for the login certificate (the provision playbook's summary file)."""
    with open(job.summary_path, encoding='utf-8') as handle:
        entry, = json.load(handle)['erp.example']
    assert entry['name'] == LOGIN_NAME
    return entry


def pem_serial(path):
    with open(path, 'rb') as handle:
        return '%016X' % x509.load_pem_x509_certificate(handle.read()).serial_number


@pytest.fixture(scope='module')
def job(emulator, subject, tmp_path_factory):
    return AwxJob(tmp_path_factory.mktemp('awx-job'), emulator, subject['nip'])


def test_1_pkcs12_credential_provisions_and_the_report_writes_prometheus_metrics(job, subject, emulator, tmp_path):
    inputs = job.inputs(auth_pkcs12=subject['pkcs12_b64'], auth_passphrase=subject['passphrase'])
    rendered = awx_injectors.render(job.credential_type, inputs, str(tmp_path))
    # As AWX injects it: the bundle's Base64 in a 0600 file, no key file used, the passphrase in the env.
    assert rendered['env']['KSEF_AUTH_CERTIFICATE_PATH'] == rendered['files']['template.auth_pkcs12']
    assert rendered['env']['KSEF_AUTH_PRIVATE_KEY_PATH'] == '' and rendered['env']['KSEF_ENVIRONMENT'] == ''
    assert rendered['env']['KSEF_CA_PATH'] == rendered['files']['template.api_ca']
    assert os.stat(rendered['files']['template.auth_pkcs12']).st_mode & 0o777 == 0o600

    dummy, dummy = job.run('provision.yml', inputs)
    certificates = certificates_of(emulator, subject['nip'])
    assert len(certificates) == 1
    (serial, record), = certificates.items()
    assert record['name'] == LOGIN_NAME and record['type'] == 'Authentication' and record['status'] == 'Active'
    assert pem_serial(job.login_certificate_path) == serial
    assert login_entry(job)['action'] == 'enrolled' and login_entry(job)['serial_number'] == serial
    assert 'renewed while this run logged in with it' not in dummy

    report_dir = tmp_path / 'report'
    textfile_dir = tmp_path / 'node_exporter' / 'textfile'
    textfile_dir.mkdir(parents=True)
    result, dummy = job.run('report.yml', inputs, extravars={
        'ksef_report_dir': str(report_dir), 'ksef_report_prometheus_host': 'metrics.example',
        'ksef_report_prometheus_path': str(textfile_dir / 'ksef.prom')})
    # Written on the node_exporter host of the inventory (by delegation), through a temp file and a rename.
    written = [event['event_data'] for event in result.events if event['event'] == 'runner_on_ok'
               and event['event_data']['task'].startswith(('Write the Prometheus metrics', 'Put the Prometheus metrics'))]
    assert [data['host'] for data in written] == ['localhost', 'localhost']
    assert [data['res']['_ansible_delegated_vars']['ansible_delegated_host'] for data in written] == ['metrics.example'] * 2
    assert not (report_dir / 'ksef-certificates.prom').exists()
    text = (textfile_dir / 'ksef.prom').read_text()
    assert os.listdir(str(textfile_dir)) == ['ksef.prom']
    families = dict((family.name, family) for family in text_string_to_metric_families(text))
    expiry, = families['ksef_certificate_expiry_timestamp_seconds'].samples
    assert expiry.labels == {'subject': subject['nip'], 'name': LOGIN_NAME, 'type': 'authentication',
                             'serial_number': serial}
    with open(job.login_certificate_path, 'rb') as handle:
        not_after = x509.load_pem_x509_certificate(handle.read()).not_valid_after_utc
    assert abs(expiry.value - not_after.timestamp()) < 1
    states = [sample.labels['state'] for sample in families['ksef_certificate_state'].samples if sample.value == 1]
    assert states == ['current']
    assert families['ksef_certificate_declared'].samples[0].value == 1
    remaining = families['ksef_certificate_quota_remaining'].samples[0].value
    limit = families['ksef_certificate_quota_limit'].samples[0].value
    assert limit > 0 and remaining == limit - 1
    assert families['ksef_enrollment_quota_remaining'].samples[0].value == \
        families['ksef_enrollment_quota_limit'].samples[0].value - 1
    report = json.loads((report_dir / 'ksef-certificates.json').read_text())
    assert report['certificates'][0]['state'] == 'current' and report['alerts'] == []


def test_2_renewing_the_login_from_an_awx_credential_keeps_it_active_and_says_why(job, subject, emulator):
    first, = certificates_of(emulator, subject['nip'])
    with open(job.login_certificate_path) as cert_file, open(job.login_key_path) as key_file:
        inputs = job.inputs(auth_certificate=cert_file.read(), auth_private_key=key_file.read())
    job.set_renew_before_days(3650)  # due now
    result, output = job.run('provision.yml', inputs)

    second = pem_serial(job.login_certificate_path)
    assert login_entry(job)['action'] == 'renewed' and login_entry(job)['serial_number'] == second != first
    # The playbook says why, from ksef_certificate's superseded_login.
    assert ('was renewed while this run logged in with it: the superseded certificate %s stays active, because the '
            'new certificate and key' % first) in ' '.join(output.split())
    assert 'Set ksef_login_credential_name and attach a controller credential' in ' '.join(output.split())
    certificates = certificates_of(emulator, subject['nip'])
    assert certificates[first]['status'] == 'Active' and certificates[second]['status'] == 'Active'


def test_3_renewing_the_login_from_the_declared_files_installs_then_revokes(job, subject, emulator):
    before = certificates_of(emulator, subject['nip'])
    active = sorted(serial for serial, record in before.items() if record['status'] == 'Active')
    current = pem_serial(job.login_certificate_path)
    assert current in active and len(active) == 2
    env = {'KSEF_CONTEXT_TYPE': 'nip', 'KSEF_CONTEXT_ID': subject['nip'], 'KSEF_API_URL': emulator['KSEF_EMULATOR_API_URL'],
           'KSEF_CA_PATH': emulator['KSEF_EMULATOR_CA'],
           'KSEF_AUTH_CERTIFICATE_PATH': job.login_certificate_path, 'KSEF_AUTH_PRIVATE_KEY_PATH': job.login_key_path}
    dummy, output = job.run('provision.yml', env=env)

    assert login_entry(job)['action'] == 'renewed' and 'renewed while this run logged in with it' not in output
    after = certificates_of(emulator, subject['nip'])
    newest = pem_serial(job.login_certificate_path)
    assert newest not in active and after[newest]['status'] == 'Active'
    assert all(after[serial]['status'] == 'Revoked' and after[serial]['revocationReason'] == 'Superseded'
               for serial in active)


@pytest.fixture(scope='module')
def awx_collection():
    if not os.path.exists(os.path.join(AWX_COLLECTIONS, 'ansible_collections', 'awx', 'awx', 'plugins', 'modules',
                                       'credential.py')):
        pytest.fail('build/awx-collections has no awx.awx: run `make awx-collection` (make awx-tests does)')


def test_4_the_renewed_login_goes_into_the_awx_credential_keeping_its_other_inputs(
        job, subject, emulator, awx_collection, tmp_path):
    before = certificates_of(emulator, subject['nip'])
    first = pem_serial(job.login_certificate_path)
    with open(job.login_certificate_path) as cert_file, open(job.login_key_path) as key_file:
        inputs = job.inputs(auth_certificate=cert_file.read(), auth_private_key=key_file.read())
    # The credential as AWX stores it: the inputs this job was injected with, and one more to show it is kept.
    stored = dict(inputs, auth_passphrase='')
    with fake_controller.FakeController(tmp_path, job.credential_type, 'KSeF login', stored) as controller:
        dummy, output = job.run('provision.yml', inputs, extravars={'ksef_login_credential_name': 'KSeF login'}, env={
            # What a "Red Hat Ansible Automation Platform" credential injects.
            'CONTROLLER_HOST': controller.url, 'CONTROLLER_USERNAME': 'ksef-bot', 'CONTROLLER_PASSWORD': 'bot-password',
            'CONTROLLER_VERIFY_SSL': 'false'})
    assert 'Updating the AWX/AAP credential KSeF login, then revoking it' in ' '.join(output.split())
    second = pem_serial(job.login_certificate_path)
    assert second != first and login_entry(job)['action'] == 'renewed'

    calls = [call for call in controller.calls if not call['path'].startswith('/api/v2/tokens/')]
    # The lookup reads the credential (name and type), the module resolves the type and finds it, then one PATCH.
    assert calls[0]['method'] == 'GET' and calls[0]['path'] == '/api/v2/credentials/'
    assert calls[0]['query'] == {'name': 'KSeF login', 'credential_type__name': 'KSeF (certificate login)'}
    assert [(call['method'], call['path']) for call in calls[1:]] == [
        ('GET', '/api/v2/credential_types/'), ('GET', '/api/v2/credentials/'), ('PATCH', '/api/v2/credentials/5/')]
    assert calls[1]['query'] == {'name': 'KSeF (certificate login)'}
    assert calls[2]['query'] == {'credential_type': '7', 'name': 'KSeF login'}
    assert all(call['authorization'] == 'Bearer' for call in calls)
    with open(job.login_certificate_path) as cert_file, open(job.login_key_path) as key_file:
        new_certificate, new_key = cert_file.read(), key_file.read()
    expected_inputs = dict(stored, auth_certificate=new_certificate, auth_private_key=new_key)
    # The private key is a secret: the API shows it as $encrypted$ and the update sends it back only as the new key.
    assert calls[3]['body'] == {'name': 'KSeF login', 'credential_type': 7, 'inputs': expected_inputs}
    assert controller.credentials[0]['inputs'] == expected_inputs
    for name in ('environment', 'api_url', 'api_ca', 'context_type', 'context_id'):
        assert calls[3]['body']['inputs'][name] == stored[name]
    # Only then the superseded login certificate is revoked.
    after = certificates_of(emulator, subject['nip'])
    assert before[first]['status'] == 'Active' and after[first]['status'] == 'Revoked'
    assert after[second]['status'] == 'Active'


def test_5_a_controller_key_directory_that_is_not_kept_never_enrolls_again(emulator, subject, tmp_path):
    """As AWX runs it: each job has a fresh private data directory, and the key directory is inside it."""
    shared = AwxJob(tmp_path, emulator, subject['nip'])
    inventory = tmp_path / 'pos-inventory.yml'
    inventory.write_text(yaml.safe_dump({'all': {'hosts': {'pos.example': {
        'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
        'ksef_deploy_key_dir': str(tmp_path / 'pos' / 'private'), 'ksef_deploy_certificate_dir': str(tmp_path / 'pos' / 'certs'),
        'ksef_deploy_certificates': [{'name': 'awx-shared-offline', 'type': 'offline', 'key_location': 'controller'}],
    }}}}))
    inputs = shared.inputs(auth_pkcs12=subject['pkcs12_b64'], auth_passphrase=subject['passphrase'])

    def in_the_job(private_data_dir):
        return {'ksef_deploy_controller_key_dir': str(private_data_dir / 'artifacts' / 'ksef-keys')}

    def shared_records():
        return [cert for cert in certificates_of(emulator, subject['nip']).values() if cert['name'] == 'awx-shared-offline']

    shared.run('provision.yml', inputs, inventory=inventory, job_extravars=in_the_job)
    (record,) = shared_records()
    assert record['status'] == 'Active'
    assert (tmp_path / 'pos' / 'certs' / 'awx-shared-offline.crt').exists()

    # The next job's directory is empty: check mode predicts the refusal, the real job refuses; nothing is sent.
    for check in (True, False):
        dummy, output = shared.run('provision.yml', inputs, inventory=inventory, job_extravars=in_the_job, check=check,
                                   expect_failure=True)
        text = ' '.join(output.split())
        assert 'awx-shared-offline.key does not exist, but KSeF still lists active %s' % record['serialNumber'] in text
        assert 'persistent storage' in text and 'ksef_deploy_replace_missing_keys' in text
        assert 'it would be enrolled' not in text and 'failed=1' in text
    assert shared_records() == [record]
    enrollments = [entry for entry in emulator_state(emulator)['enrollments']
                   if entry['name'] == 'awx-shared-offline' and entry['subjectIdentifier']['value'] == subject['nip']]
    assert len(enrollments) == 1, enrollments

    # The revoke job template, answered as its survey asks (a survey answer is text; empty answers are '').
    with open(os.path.join(REPO, 'docs', 'awx', 'surveys', 'revoke.json'), encoding='utf-8') as handle:
        survey = json.load(handle)
    answers = dict((question['variable'], question.get('default', '')) for question in survey['spec'])
    answers.update(ksef_revoke_name='awx-shared-offline', ksef_revoke_type='offline', ksef_revoke_hosts='pos.example')
    shared.run('revoke.yml', inputs, inventory=inventory, extravars=answers)
    (record,) = shared_records()
    assert record['status'] == 'Revoked'
    assert not (tmp_path / 'pos' / 'certs' / 'awx-shared-offline.crt').exists()

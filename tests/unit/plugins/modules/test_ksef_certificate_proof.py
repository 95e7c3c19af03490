# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ksef_certificate_proof through main(): prepare, the host's signature (ksef_deploy_host operation=sign through its
own main()), finish, over scripted HTTP; bad input fails before any call; check mode sends nothing."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils import _crypto
from ansible_collections.ksef.certificates.plugins.modules import ksef_certificate_proof, ksef_deploy_host
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils import certs
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.http_script import Exchange, HttpScript
from ansible_collections.ksef.certificates.tests.unit.plugins.module_utils.test_auth import REFRESH, xades_login

pytest.importorskip('signxml')

CONNECTION = {'api_url': 'https://ksef.invalid/v2', 'context_id': certs.TEST_NIP}


def test_prepare_sign_on_the_host_finish(run_module, monkeypatch, tmp_path):
    key = certs.make_key('ec', slot=7)
    cert = certs.make_seal_certificate(key)
    key_path = tmp_path / 'app.key'
    key_path.write_bytes(_crypto.private_key_to_pem(key))
    key_path.chmod(0o600)
    # An api_url that is not TEST's: the chain is verified unless verify_certificate_chain says otherwise.
    script = HttpScript(xades_login(cert, poll_codes=(200,), verify_chain='true') + [
        Exchange('DELETE', '/auth/sessions/current', token=REFRESH, status=204)]).install(monkeypatch)
    certificate = {'id': 'web01|app|authentication', 'type': 'authentication', 'certificate': certs.cert_pem(cert).decode()}
    prepared = run_module(ksef_certificate_proof, dict(CONNECTION, step='prepare', certificates=[certificate]))
    assert prepared.exit_code == 0 and not prepared['changed'] and prepared['api_calls'] == 1
    proof = prepared['proofs'][0]
    signed = run_module(ksef_deploy_host, {'operation': 'sign', 'key_path': str(key_path), 'data': proof['data'],
                                           'scheme': proof['scheme']})
    assert signed.exit_code == 0 and not signed['changed'] and 'PRIVATE KEY' not in str(signed)
    finished = run_module(ksef_certificate_proof, dict(CONNECTION, step='finish',
                                                       proofs=[dict(proof, signature=signed['signature'])]))
    script.verify()
    assert finished.exit_code == 0 and not finished['changed']
    assert finished['proofs'][0]['proven'] is True and finished['proofs'][0]['id'] == 'web01|app|authentication'


def test_a_missing_context_fails_before_any_call(run_module, monkeypatch):
    script = HttpScript([]).install(monkeypatch)
    cert = certs.make_seal_certificate(certs.make_key('ec', slot=7))
    result = run_module(ksef_certificate_proof, {'api_url': 'https://ksef.invalid/v2', 'step': 'prepare', 'certificates': [
        {'type': 'authentication', 'certificate': certs.cert_pem(cert).decode()}]})
    script.verify()
    assert result.exit_code == 1 and 'context_id is required' in result['msg'] and result['api_calls'] == 0


def test_check_mode_sends_nothing(run_module, monkeypatch):
    script = HttpScript([]).install(monkeypatch)
    cert = certs.make_seal_certificate(certs.make_key('ec', slot=7))
    result = run_module(ksef_certificate_proof, dict(CONNECTION, step='prepare', certificates=[
        {'type': 'authentication', 'certificate': certs.cert_pem(cert).decode()}]), check_mode=True)
    script.verify()
    assert result.exit_code == 0 and result['proofs'][0]['proven'] is None and result['api_calls'] == 0


def test_the_sign_operation_refuses_an_unknown_scheme_by_its_choices(run_module, tmp_path):
    result = run_module(ksef_deploy_host, {'operation': 'sign', 'key_path': str(tmp_path / 'k'), 'data': 'YQ==',
                                           'scheme': 'rsa_pkcs1v15_md5'})
    assert result.exit_code == 1 and 'scheme' in result['msg']

"""The emulator's /tokens contract: statuses over time, lastUseDate, filters, continuation token, visibility."""

import time

from conftest import exception_codes, login, new_seal, wait_for_auth
from test_emulator_auth import _token_login, wait_for_token_status


def _generate(client, access, description, permissions=('InvoiceRead',)):
    response = client.call('POST', '/tokens', token=access, json={'permissions': list(permissions), 'description': description})
    assert response.status_code == 202
    return response.json()


def _list(client, access, params=None, continuation=None, check=True):
    headers = {'x-continuation-token': continuation} if continuation else {}
    return client.call('GET', '/tokens', token=access, params=params or {}, headers=headers, check=check)


# Far longer than the steps a test takes inside the window, far shorter than the access token's 900 s.
PROCESSING_WINDOW = 300


def _slow_processing(emulator_server, monkeypatch):
    """Tokens stay Pending and Revoking for PROCESSING_WINDOW seconds of the emulator's clock (not 0.3 s of a
    loaded machine): a test checks the status inside the window, then ends it with emulator_clock.advance()."""
    monkeypatch.setattr(emulator_server.emulator.config, 'processing_delay', PROCESSING_WINDOW)


def test_a_new_token_is_pending_then_active_and_cannot_log_in_while_pending(client, emulator_server, emulator_clock, monkeypatch):
    nip, cert, key = new_seal()
    access = login(client, cert, key, nip)['accessToken']
    _slow_processing(emulator_server, monkeypatch)
    generated = _generate(client, access, 'pending first')
    item = client.call('GET', '/tokens/{referenceNumber}', {'referenceNumber': generated['referenceNumber']}, token=access).json()
    assert item['status'] == 'Pending' and item['statusDetails'] == [] and 'lastUseDate' not in item
    early = _token_login(client, nip, generated['token'])
    assert wait_for_auth(client, early.json())['status']['code'] == 450
    emulator_clock.advance(PROCESSING_WINDOW)
    active = wait_for_token_status(client, access, generated['referenceNumber'], 'Active')
    assert active['requestedPermissions'] == ['InvoiceRead'] and active['authorIdentifier'] == {'type': 'Nip', 'value': nip}


def test_a_token_login_sets_last_use_and_a_revoking_token_is_refused(client, emulator_server, emulator_clock, monkeypatch):
    nip, cert, key = new_seal()
    access = login(client, cert, key, nip)['accessToken']
    _slow_processing(emulator_server, monkeypatch)
    generated = _generate(client, access, 'last use token')
    reference = generated['referenceNumber']
    emulator_clock.advance(PROCESSING_WINDOW)
    wait_for_token_status(client, access, reference, 'Active')
    before = emulator_clock.now()
    init = _token_login(client, nip, generated['token'])
    assert wait_for_auth(client, init.json())['status']['code'] == 200
    listed = _list(client, access).json()['tokens']
    assert listed[0]['referenceNumber'] == reference and listed[0]['lastUseDate']
    assert client.call('DELETE', '/tokens/{referenceNumber}', {'referenceNumber': reference}, token=access).status_code == 204
    assert _list(client, access, {'status': 'Revoking'}).json()['tokens'][0]['referenceNumber'] == reference
    refused = _token_login(client, nip, generated['token'])
    assert wait_for_auth(client, refused.json())['status']['code'] == 450
    # A session opened while the token was Active ends with it: redeem is refused now.
    redeem = client.call('POST', '/auth/token/redeem', token=init.json()['authenticationToken']['token'], check=False)
    assert redeem.status_code == 400 and exception_codes(redeem) == [21301]
    again = client.call('DELETE', '/tokens/{referenceNumber}', {'referenceNumber': reference}, token=access, check=False)
    assert again.status_code == 400 and exception_codes(again) == [21405]
    emulator_clock.advance(PROCESSING_WINDOW)
    revoked = wait_for_token_status(client, access, reference, 'Revoked')
    assert revoked['lastUseDate'] >= time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(before - 1))


def test_filters_and_the_continuation_token(client):
    nip, cert, key = new_seal()
    access = login(client, cert, key, nip)['accessToken']
    references = []
    for number in range(12):
        if number == 9:
            time.sleep(1.1)     # POST /tokens allows 10 requests a second
        references.append(_generate(client, access, 'paging token %02d' % number)['referenceNumber'])
    _generate(client, access, 'Other ERP link')
    first = _list(client, access, {'description': 'PAGING', 'pageSize': 10}).json()
    assert len(first['tokens']) == 10 and first['continuationToken']
    second = _list(client, access, {'description': 'paging', 'pageSize': 10}, first['continuationToken']).json()
    assert len(second['tokens']) == 2 and not second.get('continuationToken')
    # Newest first, every token once over the two pages.
    assert [t['referenceNumber'] for t in first['tokens'] + second['tokens']] == list(reversed(references))
    assert [t['description'] for t in _list(client, access, {'description': 'erp'}).json()['tokens']] == ['Other ERP link']
    by_author = _list(client, access, {'authorIdentifier': nip[:5], 'authorIdentifierType': 'Nip', 'pageSize': 100}).json()
    assert len(by_author['tokens']) == 13
    assert _list(client, access, {'authorIdentifierType': 'Pesel'}).json()['tokens'] == []
    assert len(_list(client, access, {'status': ['Pending', 'Active'], 'pageSize': 100}).json()['tokens']) == 13
    time.sleep(1.1)     # GET /tokens allows 10 requests a second
    for bad in ({'description': 'ab'}, {'authorIdentifier': '12'}, {'status': 'Gone'}, {'authorIdentifierType': 'Email'},
                {'pageSize': 5}):
        response = _list(client, access, bad, check=False)
        assert response.status_code == 400 and exception_codes(response) == [21405], bad
    wrong = _list(client, access, continuation='not-a-token', check=False)
    assert wrong.status_code == 400 and exception_codes(wrong) == [21405]


def test_a_token_login_sees_only_its_own_token_and_cannot_generate(client):
    nip, cert, key = new_seal()
    access = login(client, cert, key, nip)['accessToken']
    mine = _generate(client, access, 'integration token', ['InvoiceRead', 'CredentialsRead'])
    _generate(client, access, 'second token')
    wait_for_token_status(client, access, mine['referenceNumber'], 'Active')
    init = _token_login(client, nip, mine['token'])
    wait_for_auth(client, init.json())
    token_access = client.call('POST', '/auth/token/redeem',
                               token=init.json()['authenticationToken']['token']).json()['accessToken']['token']
    assert [t['referenceNumber'] for t in _list(client, token_access).json()['tokens']] == [mine['referenceNumber']]
    refused = client.call('POST', '/tokens', token=token_access, json={'permissions': ['InvoiceRead'], 'description': 'from a token'},
                          check=False)
    assert refused.status_code == 403

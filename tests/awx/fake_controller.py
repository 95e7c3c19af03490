# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A stand-in for the AWX controller API on 127.0.0.1 that records every call (method, path, query, JSON body).

Only what awx.awx.credential and the awx.awx.controller_api lookup use: a token login (POST/DELETE
/api/v2/tokens/), list views of credential_types and credentials filtered by their query parameters, and PATCH of a
credential. Secrets read `$encrypted$` in answers, and a `$encrypted$` sent back keeps the stored value, as AWX does.
The server runs in its own process (ansible-runner forks the job: the test process stays single-threaded); each call
is appended to <directory>/calls.jsonl and the credentials after each change to <directory>/credentials.json.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

ENCRYPTED = '$encrypted$'


class FakeController:
    """The test's side: starts the server process, reads what it recorded."""

    def __init__(self, directory, credential_type, credential_name, inputs):
        self.directory = str(directory)
        self.config = os.path.join(self.directory, 'controller.json')
        with open(self.config, 'w', encoding='utf-8') as handle:
            json.dump({'credential_type': credential_type, 'credential_name': credential_name, 'inputs': inputs}, handle)
        self.process = None
        self.url = None

    def __enter__(self):
        self.process = subprocess.Popen([sys.executable, os.path.abspath(__file__), self.config, self.directory],
                                        stdout=subprocess.PIPE, text=True)
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith('http://127.0.0.1:'):
            self.process.kill()
            raise RuntimeError('the fake controller did not start: %r' % self.url)
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process.stdout.close()

    @property
    def calls(self):
        path = os.path.join(self.directory, 'calls.jsonl')
        if not os.path.exists(path):
            return []
        with open(path, encoding='utf-8') as handle:
            return [json.loads(line) for line in handle]

    @property
    def credentials(self):
        with open(os.path.join(self.directory, 'credentials.json'), encoding='utf-8') as handle:
            return json.load(handle)


class ControllerState:
    """The server's side: the objects and the answers."""

    def __init__(self, directory, credential_type, credential_name, inputs):
        self.directory = directory
        self.secret_fields = set(field['id'] for field in credential_type['inputs']['fields'] if field.get('secret'))
        self.credential_types = [{'id': 7, 'type': 'credential_type', 'name': credential_type['name'],
                                  'url': '/api/v2/credential_types/7/'}]
        self.credentials = [{'id': 5, 'type': 'credential', 'name': credential_name, 'credential_type': 7,
                             'organization': None, 'summary_fields': {'credential_type': {'name': credential_type['name']}},
                             'url': '/api/v2/credentials/5/', 'inputs': dict(inputs)}]
        self.save_credentials()

    def save_credentials(self):
        with open(os.path.join(self.directory, 'credentials.json'), 'w', encoding='utf-8') as handle:
            json.dump(self.credentials, handle)

    def record(self, call):
        with open(os.path.join(self.directory, 'calls.jsonl'), 'a', encoding='utf-8') as handle:
            handle.write(json.dumps(call) + '\n')

    def shown(self, credential):
        """A credential as the API shows it: secret inputs read $encrypted$."""
        shown = copy.deepcopy(credential)
        shown['inputs'] = dict((name, ENCRYPTED if name in self.secret_fields and value else value)
                               for name, value in credential['inputs'].items())
        return shown

    def answer(self, method, path, query, body):
        if path == '/api/v2/tokens/' and method == 'POST':
            return 201, {'id': 31, 'token': 'fake-oauth-token'}
        if path.startswith('/api/v2/tokens/') and method == 'DELETE':
            return 204, None
        if path == '/api/v2/credential_types/' and method == 'GET':
            return 200, self.page(self.credential_types, query)
        if path == '/api/v2/credentials/' and method == 'GET':
            return 200, self.page([self.shown(item) for item in self.credentials], query)
        for credential in self.credentials:
            if path == credential['url'] and method == 'PATCH':
                if 'inputs' in body:   # AWX replaces the inputs; a secret sent as $encrypted$ keeps its value
                    old = credential['inputs']
                    credential['inputs'] = dict((name, old.get(name, '') if value == ENCRYPTED else value)
                                                for name, value in body['inputs'].items())
                    self.save_credentials()
                return 200, self.shown(credential)
        return 404, {'detail': 'Not found.'}

    @staticmethod
    def page(items, query):
        def matches(item):
            for name, value in query.items():
                if name == 'credential_type__name':
                    if item['summary_fields']['credential_type']['name'] != value:
                        return False
                elif name == 'organization__name':
                    return False   # the credentials here belong to no organization
                elif name in ('name', 'credential_type', 'id') and str(item.get(name)) != value:
                    return False
            return True
        results = [item for item in items if matches(item)]
        return {'count': len(results), 'next': None, 'previous': None, 'results': results}

    def handler_class(self):
        controller = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get('Content-Length') or 0)
                raw = self.rfile.read(length) if length else b''
                body = json.loads(raw.decode('utf-8')) if raw else None
                query = dict(parse_qsl(parts.query))
                controller.record({'method': self.command, 'path': parts.path, 'query': query, 'body': body,
                                   'authorization': self.headers.get('Authorization', '').split(' ')[0]})
                status, answer = controller.answer(self.command, parts.path, query, body)
                data = json.dumps(answer).encode('utf-8') if answer is not None else b''
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('X-API-Product-Name', 'AWX')
                self.send_header('X-API-Product-Version', '24.6.1')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

            def log_message(self, *args):
                pass

        return Handler


def main(config_path, directory):
    with open(config_path, encoding='utf-8') as handle:
        config = json.load(handle)
    state = ControllerState(directory, config['credential_type'], config['credential_name'], config['inputs'])
    server = ThreadingHTTPServer(('127.0.0.1', 0), state.handler_class())
    print('http://127.0.0.1:%d' % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == '__main__':
    main(*sys.argv[1:])

"""Running the emulator: werkzeug's threaded server with TLS from the emulator's own CA."""

import logging
import os
import ssl
import tempfile
import threading

from werkzeug.serving import WSGIRequestHandler, make_server

from .app import HANDLER_KEY, create_app
from .emulator import Config, Emulator

LOG = logging.getLogger('ksef_emulator')


class EmulatorRequestHandler(WSGIRequestHandler):
    """Exposes the handler to the app (for injected connection faults) and logs quietly."""

    def make_environ(self):
        environ = super().make_environ()
        environ[HANDLER_KEY] = self
        return environ

    def log_request(self, code='-', size='-'):
        LOG.debug('%s "%s" %s', self.address_string(), self.requestline, code)

    def log_error(self, format, *args):  # pylint: disable=redefined-builtin
        LOG.debug('%s %s', self.address_string(), format % args)


def _write_atomic(path, data):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp-')
    with os.fdopen(fd, 'wb') as handle:
        handle.write(data)
    os.replace(tmp, path)


def _ssl_context(emulator, host):
    cert_pem, key_pem = emulator.keys.issue_tls_server_certificate(host)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # load_cert_chain needs files: a private temporary directory, removed right after loading.
    with tempfile.TemporaryDirectory(prefix='ksef-emulator-tls-') as directory:
        cert_path = os.path.join(directory, 'server.pem')
        key_path = os.path.join(directory, 'server.key')
        with open(cert_path, 'wb') as handle:
            handle.write(cert_pem)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'wb') as handle:
            handle.write(key_pem)
        context.load_cert_chain(cert_path, key_path)
    return context


class EmulatorServer:
    """A running emulator. `start()` serves in a background thread; `serve_forever()` in this one."""

    def __init__(self, config=None, host='127.0.0.1', port=0, tls=True, tls_ca_file=None, ready_file=None):
        self.config = config or Config()
        self.host = host
        self.tls = tls
        self.emulator = Emulator(self.config)
        self.app = create_app(self.emulator)
        ssl_context = _ssl_context(self.emulator, host) if tls else None
        self._server = make_server(host, port, self.app, threaded=True, ssl_context=ssl_context,
                                   request_handler=EmulatorRequestHandler)
        self._server.daemon_threads = True
        self.port = self._server.server_port
        self._thread = None
        if tls and tls_ca_file:
            _write_atomic(tls_ca_file, self.emulator.keys.tls_ca_pem())
        # The listening socket queues connections from here on, so the base URL is usable now.
        if ready_file:
            _write_atomic(ready_file, (self.base_url + '\n').encode('ascii'))

    @property
    def root_url(self):
        host = '[%s]' % self.host if ':' in self.host else self.host
        return '%s://%s:%d' % ('https' if self.tls else 'http', host, self.port)

    @property
    def base_url(self):
        return self.root_url + '/v2'

    def tls_ca_pem(self):
        return self.emulator.keys.tls_ca_pem()

    def serve_forever(self):
        self._server.serve_forever(poll_interval=0.2)

    def start(self):
        self._thread = threading.Thread(target=self.serve_forever, name='ksef-emulator', daemon=True)
        self._thread.start()
        return self

    def shutdown(self):
        """Make serve_forever() return (call it from another thread than the serving one)."""
        self._server.shutdown()

    def close(self):
        self._server.server_close()
        self.emulator.close()

    def stop(self):
        self.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.close()

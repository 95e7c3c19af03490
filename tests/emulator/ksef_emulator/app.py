"""Flask application: the /v2 KSeF routes, the /emulator control routes and the request pipeline
(recording, injected faults, rate limits, X-System-Warning echo, error bodies)."""

import base64
import functools
import hashlib
import io
import json
import logging
import re
import socket
import struct
import time

from cryptography.hazmat.primitives.serialization import Encoding
from flask import Flask, Response, g, jsonify, request

from . import auth, certificates, errors, faults, ksef_tokens, ratelimit, switches, testdata, tokens, util
from .errors import ApiError, UnsupportedMediaType, validation_error

LOG = logging.getLogger('ksef_emulator')
API_PREFIX = '/v2'
CONTROL_PREFIX = '/emulator/'
ABORT_KEY = 'ksef_emulator.abort'
HANDLER_KEY = 'ksef_emulator.handler'
ERROR_TYPES = (errors.ApiError, errors.Unauthorized, errors.Forbidden, errors.Gone, errors.UnsupportedMediaType,
               errors.TooManyRequests)

# endpoint name -> (OpenAPI path template, rate-limit group: 'public' or 'other')
ROUTES = {}


def _json_body(optional=False):
    """Decoded JSON request body; None when empty and optional; 21405 when unreadable."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if optional:
            return None
        raise validation_error('request body is required')
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise validation_error('request body is not valid JSON: %s' % exc)


class BadControlArgument(ValueError):
    """A control endpoint's (/emulator/...) query argument that does not parse: 400 with a plain error."""


def _control_arg(name, convert, default, expected):
    """Query argument `name` of a control endpoint converted by `convert`; BadControlArgument naming `expected`."""
    try:
        return convert(request.args.get(name, default))
    except ValueError:
        raise BadControlArgument("'%s' must be %s" % (name, expected))


def _no_content():
    return Response(status=204)


def _empty_ok():
    return Response(status=200)


class AbortingMiddleware:
    """Performs 'drop-response' and 'reset' faults after the Flask app produced (and discarded) its answer.

    Closing the socket from inside the WSGI call and raising ConnectionResetError makes werkzeug treat
    the request as a dropped connection, so nothing is written. SO_LINGER 0 turns close() into a TCP RST.
    """

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        result = self.wsgi_app(environ, start_response)
        mode = environ.get(ABORT_KEY)
        handler = environ.get(HANDLER_KEY)
        if not mode or handler is None:
            return result
        if hasattr(result, 'close'):
            result.close()
        abort_connection(handler, mode)
        raise ConnectionResetError('connection closed by an injected %s fault' % mode)


def abort_connection(handler, mode):
    connection = handler.connection
    try:
        if mode == 'reset':
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        else:
            connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    handler.close_connection = True
    # The makefile() streams hold references to the socket; close them so close() really closes it.
    for stream in (handler.rfile, handler.wfile):
        try:
            stream.close()
        except OSError:
            pass
    handler.wfile = io.BytesIO()   # werkzeug flushes wfile after the request; give it a harmless sink
    handler.rfile = io.BytesIO()
    connection.close()


def create_app(emu):
    app = Flask('ksef_emulator')
    app.config['MAX_CONTENT_LENGTH'] = 4 * 1024 * 1024
    app.json.sort_keys = False
    app.json.ensure_ascii = False
    app.wsgi_app = AbortingMiddleware(app.wsgi_app)

    def api(method, template, group='other'):
        rule = API_PREFIX + re.sub(r'\{(\w+)\}', r'<\1>', template)
        endpoint = '%s %s' % (method, template)

        def decorator(view):
            @functools.wraps(view)
            def transactional(**kwargs):
                with emu.store.transaction():
                    return view(**kwargs)
            app.add_url_rule(rule, endpoint, transactional, methods=[method])
            ROUTES[endpoint] = (template, group)
            return view
        return decorator

    # --- pipeline -------------------------------------------------------------------------------------

    def rate_limit_context():
        header = request.headers.get('Authorization', '')
        if not header.lower().startswith('bearer '):
            return None
        try:
            claims = tokens.decode(emu.keys.jwt_secret, header[7:].strip(), ('operation', 'access', 'refresh'),
                                   util.now())
        except tokens.TokenInvalid:
            return None
        return claims.get('ctx')

    @app.before_request
    def before():
        g.record = None
        g.fault = None
        g.enrollment_fault = None
        g.system_warnings = []
        if request.path.startswith(CONTROL_PREFIX):
            return None
        template, group = ROUTES.get(request.endpoint, (None, None))
        g.system_warnings = emu.switches.warnings_for(
            request.method, template or (request.path[len(API_PREFIX):] if request.path.startswith(API_PREFIX) else request.path))
        body = request.get_data(cache=True)
        g.record = emu.recorder.begin(request.method, request.path, request.query_string.decode('latin-1'),
                                      template, request.content_type, body)
        fault_route = template or (request.path[len(API_PREFIX):] if request.path.startswith(API_PREFIX) else request.path)
        fault = emu.faults.take(request.method, fault_route)
        if fault:
            g.fault = fault['mode']
            if fault['mode'] == 'reset':
                request.environ[ABORT_KEY] = 'reset'
                return Response(status=500)   # never sent: the middleware resets the connection
            if fault['mode'] == 'status':
                return errors.injected_status_response(fault['status'], fault.get('retryAfter', 1))
            if fault['mode'] == 'delay':
                time.sleep(fault['delay'])
            if fault['mode'] == 'hold':
                emu.faults.hold({'seq': g.record['seq'], 'method': request.method, 'route': fault_route},
                                fault['timeout'])
            if fault['mode'] == 'drop-response':
                request.environ[ABORT_KEY] = 'drop-response'
            if fault['mode'] == 'enrollment-status':
                g.enrollment_fault = fault
        if template is None:
            return None
        context = rate_limit_context()
        limits = ratelimit.PUBLIC_LIMITS if group == 'public' else testdata.effective_rate_limits(emu, context)['other']
        refused = emu.limiter.hit((request.method, template, context, request.remote_addr), limits, util.now(),
                                  emu.switches.get('rateLimitEscalation'))
        if refused:
            raise errors.TooManyRequests(*refused)
        certificates.process_due_enrollments(emu)
        return None

    @app.after_request
    def after(response):
        # KSeF's format: '[code]: message | [code]: message'; the TEST echo header and switched-on warnings.
        warnings = [text for text in [request.headers.get('X-Test-System-Warning')] + g.get('system_warnings', []) if text]
        if warnings:
            response.headers['X-System-Warning'] = ' | '.join(warnings)
        fault = g.get('enrollment_fault')
        if fault and response.status_code == 202:
            # The enrollment was accepted; end it with the injected final status instead of issuing it.
            reference = (response.get_json(silent=True) or {}).get('referenceNumber')
            if reference:
                with emu.store.transaction():
                    emu.store.update('enrollments', 'reference_number', reference,
                                     {'status_code': fault['status'], 'status_description': fault['description']})
        if g.get('record') is not None:
            emu.recorder.finish(g.record, response.status_code, response.content_type, g.get('fault'))
        return response

    for error_type in ERROR_TYPES:
        app.register_error_handler(error_type, errors.render)

    @app.errorhandler(BadControlArgument)
    def bad_control_argument(exc):
        return jsonify({'error': str(exc)}), 400

    @app.errorhandler(404)
    def not_found(_exc):
        return errors.render_plain_problem(404, 'Not Found', 'No such endpoint: %s %s' % (request.method, request.path))

    @app.errorhandler(405)
    def not_allowed(_exc):
        return errors.render_plain_problem(405, 'Method Not Allowed', '%s is not allowed on %s'
                                           % (request.method, request.path))

    @app.errorhandler(413)
    def too_large(_exc):
        return errors.render(ApiError(21405, ['request body is too large']))

    @app.errorhandler(500)
    def internal_error(exc):
        LOG.error('internal error on %s %s', request.method, request.path,
                  exc_info=getattr(exc, 'original_exception', None))
        return errors.render_plain_problem(500, 'Internal Server Error', 'The emulator failed to handle the request.')

    # --- authentication ---------------------------------------------------------------------------------

    @api('POST', '/auth/challenge', 'public')
    def challenge():
        return jsonify(auth.new_challenge(emu, request.remote_addr))

    @api('POST', '/auth/xades-signature', 'public')
    def xades_signature():
        if request.mimetype != 'application/xml':
            raise UnsupportedMediaType("Content-Type must be application/xml, got '%s'"
                                       % (request.content_type or ''))
        raw_flag = request.args.get('verifyCertificateChain')
        if raw_flag is not None and raw_flag.lower() not in ('true', 'false'):
            raise validation_error("'verifyCertificateChain' must be true or false")
        body = request.get_data(cache=True)
        if not body.strip():
            raise validation_error('request body is required')
        return jsonify(auth.start_xades(emu, body, raw_flag is not None and raw_flag.lower() == 'true')), 202

    @api('POST', '/auth/ksef-token', 'public')
    def ksef_token():
        return jsonify(auth.start_ksef_token(emu, _json_body())), 202

    @api('GET', '/auth/{referenceNumber}', 'public')
    def authentication_status(referenceNumber):
        return jsonify(auth.authentication_status(emu, request, referenceNumber))

    @api('POST', '/auth/token/redeem', 'public')
    def redeem():
        return jsonify(auth.redeem(emu, request))

    @api('POST', '/auth/token/refresh', 'public')
    def refresh():
        return jsonify(auth.refresh(emu, request))

    @api('GET', '/auth/sessions')
    def sessions():
        return jsonify(auth.list_sessions(emu, request, request.args.get('pageSize', '10'),
                                          request.headers.get('x-continuation-token')))

    @api('DELETE', '/auth/sessions/current')
    def close_current_session():
        auth.close_current_session(emu, request)
        return _no_content()

    @api('DELETE', '/auth/sessions/{referenceNumber}')
    def close_session(referenceNumber):
        auth.close_session(emu, request, referenceNumber)
        return _no_content()

    @api('GET', '/security/public-key-certificates', 'public')
    def public_key_certificates():
        result = []
        for cert, usage in emu.keys.public_key_certificates():
            der = cert.public_bytes(Encoding.DER)
            result.append({
                'certificate': base64.b64encode(der).decode('ascii'),
                'certificateId': base64.b64encode(hashlib.sha256(der).digest()).decode('ascii'),
                'publicKeyId': auth.public_key_id(cert),
                'validFrom': util.iso(cert.not_valid_before_utc.timestamp()),
                'validTo': util.iso(cert.not_valid_after_utc.timestamp()),
                'usage': [usage],
            })
        return jsonify(result)

    # --- KSeF tokens ----------------------------------------------------------------------------------------

    @api('POST', '/tokens')
    def generate_token():
        operation = auth.access_session(emu, request)
        return jsonify(ksef_tokens.generate(emu, operation, _json_body())), 202

    @api('GET', '/tokens')
    def list_tokens():
        operation = auth.access_session(emu, request)
        return jsonify(ksef_tokens.list_tokens(emu, operation, request.args, request.headers.get('x-continuation-token')))

    @api('GET', '/tokens/{referenceNumber}')
    def get_token(referenceNumber):
        return jsonify(ksef_tokens.get_token(emu, auth.access_session(emu, request), referenceNumber))

    @api('DELETE', '/tokens/{referenceNumber}')
    def revoke_token(referenceNumber):
        ksef_tokens.revoke_token(emu, auth.access_session(emu, request), referenceNumber)
        return _no_content()

    # --- certificates -----------------------------------------------------------------------------------------

    @api('GET', '/certificates/limits')
    def certificate_limits():
        return jsonify(certificates.limits(emu, auth.access_session(emu, request)))

    @api('GET', '/certificates/enrollments/data')
    def enrollment_data():
        return jsonify(certificates.enrollment_data(emu, auth.access_session(emu, request)))

    @api('POST', '/certificates/enrollments')
    def enroll():
        operation = auth.access_session(emu, request)
        return jsonify(certificates.enroll(emu, operation, _json_body())), 202

    @api('GET', '/certificates/enrollments/{referenceNumber}')
    def enrollment_status(referenceNumber):
        return jsonify(certificates.enrollment_status(emu, auth.access_session(emu, request), referenceNumber))

    @api('POST', '/certificates/retrieve')
    def retrieve():
        operation = auth.access_session(emu, request)
        return jsonify(certificates.retrieve(emu, operation, _json_body()))

    @api('POST', '/certificates/query')
    def query():
        operation = auth.access_session(emu, request)
        return jsonify(certificates.query(emu, operation, _json_body(optional=True), request.args))

    @api('POST', '/certificates/{certificateSerialNumber}/revoke')
    def revoke(certificateSerialNumber):
        operation = auth.access_session(emu, request)
        certificates.revoke(emu, operation, certificateSerialNumber, _json_body(optional=True))
        return _no_content()

    # --- limits and test data ---------------------------------------------------------------------------------

    @api('GET', '/rate-limits')
    def rate_limits():
        return jsonify(testdata.rate_limits(emu, auth.access_session(emu, request)))

    @api('GET', '/limits/subject')
    def subject_limits():
        return jsonify(testdata.subject_limits(emu, auth.access_session(emu, request)))

    @api('PUT', '/testdata/certificates/{serialNumber}')
    def update_certificate(serialNumber):
        certificates.shorten_validity(emu, auth.access_session(emu, request), serialNumber, _json_body())
        return _empty_ok()

    def testdata_view(action, session, body):
        """The view of a test-data call: action(emu[, access session][, JSON body]), answered 200 with no body."""
        def view():
            arguments = [emu]
            if session:
                arguments.append(auth.access_session(emu, request))
            if body:
                arguments.append(_json_body())
            action(*arguments)
            return _empty_ok()
        return view

    # Test-data calls: (method, route, group, testdata function, needs an access session, takes a JSON body).
    for call in (
            ('POST', '/testdata/rate-limits', 'other', testdata.set_rate_limits, True, True),
            ('DELETE', '/testdata/rate-limits', 'other', testdata.reset_rate_limits, True, False),
            ('POST', '/testdata/rate-limits/production', 'other', testdata.production_rate_limits, True, False),
            ('POST', '/testdata/limits/subject/certificate', 'other', testdata.set_subject_limits, True, True),
            ('DELETE', '/testdata/limits/subject/certificate', 'other', testdata.reset_subject_limits, True, False),
            ('POST', '/testdata/person', 'public', testdata.create_person, False, True),
            ('POST', '/testdata/person/remove', 'public', testdata.remove_person, False, True),
            ('POST', '/testdata/permissions', 'public', testdata.grant_permissions, False, True),
            ('POST', '/testdata/permissions/revoke', 'public', testdata.revoke_permissions, False, True)):
        api(*call[:3])(testdata_view(*call[3:]))

    # --- control endpoints (outside /v2) ---------------------------------------------------------------------

    @app.get('/emulator/requests')
    def recorded_requests():
        return jsonify(emu.recorder.list(_control_arg('since', int, 0, 'an integer')))

    @app.post('/emulator/faults')
    def add_fault():
        try:
            fault = faults.parse_fault(request.get_json(silent=True))
        except faults.FaultError as exc:
            return jsonify({'error': str(exc)}), 400
        emu.faults.add(fault)
        return jsonify(fault), 201

    @app.get('/emulator/faults')
    def list_faults():
        return jsonify(emu.faults.pending())

    @app.get('/emulator/faults/held')
    def held_requests():
        wait = _control_arg('wait', float, 0, 'a number of seconds')
        if not 0 <= wait <= faults.MAX_HOLD_TIMEOUT:
            return jsonify({'error': "'wait' must be between 0 and %d seconds" % faults.MAX_HOLD_TIMEOUT}), 400
        return jsonify(emu.faults.held(wait))

    @app.post('/emulator/faults/release')
    def release_held():
        return jsonify({'released': emu.faults.release()})

    @app.delete('/emulator/faults')
    def clear_faults():
        emu.faults.clear()
        return _no_content()

    @app.get('/emulator/switches')
    def get_switches():
        return jsonify(emu.switches.snapshot())

    @app.put('/emulator/switches')
    def set_switches():
        try:
            return jsonify(emu.switches.update(request.get_json(silent=True)))
        except switches.SwitchError as exc:
            return jsonify({'error': str(exc)}), 400

    @app.delete('/emulator/switches')
    def reset_switches():
        return jsonify(emu.switches.reset())

    @app.get('/emulator/state')
    def state():
        certificates.process_due_enrollments(emu)
        dump = certificates.state_dump(emu)
        dump['ksefTokens'] = ksef_tokens.state_dump(emu)
        return jsonify(dump)

    @app.get('/emulator/ca')
    def ca_certificates():
        return jsonify({'issuingCa': emu.keys.issuing_cert.public_bytes(Encoding.PEM).decode('ascii'),
                        'tlsCa': emu.keys.tls_ca_pem().decode('ascii')})

    return app

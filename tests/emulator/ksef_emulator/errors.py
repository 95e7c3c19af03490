"""KSeF error responses: ExceptionResponse (default), problem-details, 401/403/410/415/429.

Views raise the exceptions below; `render` turns them into the body KSeF would send, choosing the
problem-details format when the request carries `X-Error-Format: problem-details` (401/403/410 are
always problem+json, as documented).
"""

import json

from flask import Response, request

from . import util

# ExceptionDescription texts as published in openapi.json (400 descriptions of the endpoints).
DESCRIPTIONS = {
    9101: 'Nieprawidłowy dokument.',
    9102: 'Brak podpisu.',
    9103: 'Przekroczona liczba dozwolonych podpisów.',
    9105: 'Nieprawidłowy podpis.',
    21001: 'Nieczytelna treść.',
    21111: 'Nieprawidłowe wyzwanie autoryzacyjne.',
    21115: 'Nieprawidłowy certyfikat.',
    21117: 'Nieprawidłowy identyfikator podmiotu dla wskazanego typu kontekstu.',
    21217: 'Nieprawidłowe kodowanie znaków.',
    21301: 'Brak autoryzacji.',
    21304: 'Brak uwierzytelnienia.',
    21308: 'Próba wykorzystania metod autoryzacyjnych osoby zmarłej.',
    21401: 'Dokument nie jest zgodny ze schemą (xsd).',
    21405: 'Błąd walidacji danych wejściowych.',
    21406: 'Konflikt podpisu i typu uwierzytelnienia.',
    21470: 'Przesłany identyfikator klucza jest nieznany lub wskazuje na wycofany klucz.',
    25001: 'Brak możliwości pobrania danych do CSR dla wykorzystanego sposobu uwierzytelnienia.',
    25002: 'Brak możliwości złożenia wniosku certyfikacyjnego dla wykorzystanego sposobu uwierzytelnienia.',
    25003: 'Dane w CSR nie zgadzają się z danymi w użytym wektorze uwierzytelniającym.',
    25004: 'Niepoprawny format CSR lub niepoprawny podpis CSR.',
    25005: 'Wniosek certyfikacyjny o podanym numerze referencyjnym nie istnieje.',
    25006: 'Osiągnięto limit możliwych do złożenia wniosków certyfikacyjnych.',
    25007: 'Osiągnięto limit dopuszczalnej liczby posiadanych certyfikatów.',
    25008: 'Certyfikat o podanym numerze seryjnym nie istnieje.',
    25009: 'Nie można odwołać wskazanego certyfikatu, ponieważ jest już odwołany, zablokowany lub nieważny.',
    25010: 'Nieprawidłowy typ lub długość klucza.',
    25011: 'Nieprawidłowy algorytm podpisu CSR.',
}

SERVICE_NAME = 'ksef-emulator'
PROBLEM_JSON = 'application/problem+json'


class ApiError(Exception):
    """HTTP 400 with one KSeF exception code (ExceptionResponse / BadRequestProblemDetails)."""

    def __init__(self, code, details=None, description=None, reference_number=None):
        self.code = int(code)
        self.description = description or DESCRIPTIONS.get(self.code, 'Błąd.')
        self.details = list(details) if details else None
        self.reference_number = reference_number
        super().__init__('%d: %s' % (self.code, self.description))


def validation_error(detail):
    """21405 with the validator text in details, as KSeF reports input validation problems."""
    return ApiError(21405, [detail])


class Unauthorized(Exception):
    def __init__(self, detail):
        self.detail = detail
        super().__init__(detail)


class Forbidden(Exception):
    def __init__(self, reason_code, detail, security=None):
        self.reason_code = reason_code
        self.detail = detail
        self.security = security
        super().__init__(detail)


class Gone(Exception):
    def __init__(self, detail):
        self.detail = detail
        super().__init__(detail)


class UnsupportedMediaType(Exception):
    def __init__(self, detail):
        self.detail = detail
        super().__init__(detail)


class TooManyRequests(Exception):
    def __init__(self, retry_after, detail):
        self.retry_after = int(retry_after)
        self.detail = detail
        super().__init__(detail)


def _json_response(body, status, content_type='application/json', headers=None):
    return Response(json.dumps(body, ensure_ascii=False), status=status, content_type=content_type,
                    headers=headers or {})


def wants_problem_details():
    return request.headers.get('X-Error-Format', '').strip().lower() == 'problem-details'


def _problem(status, title, detail, **extra):
    trace = util.trace_id()
    body = {'title': title, 'status': status, 'detail': detail, 'instance': request.path,
            'timestamp': util.iso(util.now()), 'traceId': trace}
    body.update(extra)
    return body


def render(exc):
    """Flask response for one of the exceptions of this module."""
    if isinstance(exc, ApiError):
        if wants_problem_details():
            error = {'code': exc.code, 'description': exc.description, 'details': exc.details}
            detail = exc.description if not exc.details else '%s %s' % (exc.description, ' '.join(exc.details))
            body = _problem(400, 'Bad Request', detail, errors=[error])
            if exc.reference_number:
                body['referenceNumber'] = exc.reference_number
            return _json_response(body, 400, PROBLEM_JSON)
        trace = util.trace_id()
        info = {
            'exceptionDetailList': [{'exceptionCode': exc.code, 'exceptionDescription': exc.description,
                                     'details': exc.details}],
            'serviceCode': util.service_code(trace),
            'serviceName': SERVICE_NAME,
            'timestamp': util.iso(util.now()),
        }
        if exc.reference_number:
            info['referenceNumber'] = exc.reference_number
        return _json_response({'exception': info}, 400)
    if isinstance(exc, Unauthorized):
        return _json_response(_problem(401, 'Unauthorized', exc.detail), 401, PROBLEM_JSON,
                              {'WWW-Authenticate': 'Bearer'})
    if isinstance(exc, Forbidden):
        extra = {'reasonCode': exc.reason_code}
        if exc.security is not None:
            extra['security'] = exc.security
        return _json_response(_problem(403, 'Forbidden', exc.detail, **extra), 403, PROBLEM_JSON)
    if isinstance(exc, Gone):
        return _json_response(_problem(410, 'Gone', exc.detail), 410, PROBLEM_JSON)
    if isinstance(exc, UnsupportedMediaType):
        return _json_response(_problem(415, 'Unsupported Media Type', exc.detail), 415, PROBLEM_JSON)
    if isinstance(exc, TooManyRequests):
        headers = {'Retry-After': str(exc.retry_after)}
        if wants_problem_details():
            return _json_response(_problem(429, 'Too Many Requests', exc.detail), 429, PROBLEM_JSON, headers)
        body = {'status': {'code': 429, 'description': 'Too Many Requests', 'details': [exc.detail]}}
        return _json_response(body, 429, headers=headers)
    raise TypeError('not an emulator error: %r' % (exc,))


def injected_status_response(status, retry_after=1):
    """Body for a fault of mode 'status': what KSeF (or a proxy in front of it) would send."""
    if status == 400:
        return render(ApiError(21405, ['Injected fault.']))
    if status == 401:
        return render(Unauthorized('Injected fault.'))
    if status == 403:
        return render(Forbidden('insufficient-resource-access', 'Injected fault.'))
    if status == 429:
        return render(TooManyRequests(retry_after, 'Injected fault: retry after %d seconds.' % retry_after))
    titles = {500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout'}
    return _json_response(_problem(status, titles.get(status, 'Error'), 'Injected fault.'), status, PROBLEM_JSON)


def render_plain_problem(status, title, detail):
    """problem+json for statuses KSeF does not document (404, 405, 500)."""
    return _json_response(_problem(status, title, detail), status, PROBLEM_JSON)

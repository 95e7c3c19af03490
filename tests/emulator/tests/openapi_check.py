"""Validate emulator responses against the packaged openapi.json (OpenAPI 3.0.4).

`check_response(method, route, status, content_type, body)` finds the documented response of
(route, method, status), checks the content type is one of its media types and validates the JSON
body with openapi-schema-validator (nullable, formats, $refs into #/components resolved by wrapping
the schema together with the document's components).
"""

import functools
import json
import os

from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker

import ksef_emulator

OPENAPI_PATH = os.path.join(os.path.dirname(os.path.abspath(ksef_emulator.__file__)), 'openapi.json')


@functools.lru_cache(maxsize=1)
def document():
    with open(OPENAPI_PATH, encoding='utf-8') as handle:
        return json.load(handle)


class ContractError(AssertionError):
    pass


def documented_response(method, route, status):
    """The OpenAPI response object of (method, route, status); ContractError when undocumented."""
    paths = document()['paths']
    if route not in paths or method.lower() not in paths[route]:
        raise ContractError('undocumented operation %s %s' % (method, route))
    responses = paths[route][method.lower()]['responses']
    if str(status) not in responses:
        raise ContractError('%s %s: status %s is not documented (documented: %s)'
                            % (method, route, status, ', '.join(sorted(responses))))
    return responses[str(status)]


def schema_errors(instance, schema):
    wrapped = {'allOf': [schema], 'components': document()['components']}
    validator = OAS30ReadValidator(wrapped, format_checker=oas30_format_checker)
    return sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))


def check_response(method, route, status, content_type, body):
    """Raise ContractError unless the response matches the documented contract."""
    response = documented_response(method, route, status)
    content = response.get('content') or {}
    media_type = (content_type or '').split(';')[0].strip()
    if not content:
        if body not in (None, b'', ''):
            raise ContractError('%s %s %s: documented without a body, got %r' % (method, route, status, body[:200]))
        return
    if media_type not in content:
        raise ContractError('%s %s %s: content type %r is not one of %s'
                            % (method, route, status, media_type, ', '.join(content)))
    schema = content[media_type].get('schema')
    if schema is None:
        return
    errors = schema_errors(body, schema)
    if errors:
        raise ContractError('%s %s %s: body does not match the schema: %s' % (
            method, route, status, '; '.join('%s: %s' % (list(e.absolute_path), e.message[:300]) for e in errors[:5])))

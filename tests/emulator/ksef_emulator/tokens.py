"""JWT-shaped bearer tokens (HS256 with the emulator's secret) with a real `exp` claim.

Token kinds: 'operation' (authenticationToken: serves GET /auth/{ref} and redeem), 'access' (the API),
'refresh' (refresh and DELETE /auth/sessions/current).
"""

import base64
import hashlib
import hmac
import json
import secrets

ISSUER = 'ksef-emulator'


class TokenInvalid(Exception):
    """The bearer token is malformed, forged, expired or of the wrong kind (message is safe to show)."""


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def _unb64(text):
    return base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))


def encode(secret, kind, reference_number, issued_at, ttl_seconds, extra=None):
    """Return (token, expires_at) for an auth operation identified by its reference number."""
    expires_at = int(issued_at + ttl_seconds)
    claims = {'iss': ISSUER, 'typ': kind, 'ref': reference_number, 'iat': int(issued_at), 'exp': expires_at,
              'jti': secrets.token_hex(8)}
    claims.update(extra or {})
    header = _b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}, separators=(',', ':')).encode())
    payload = _b64(json.dumps(claims, separators=(',', ':')).encode())
    signing_input = ('%s.%s' % (header, payload)).encode('ascii')
    signature = _b64(hmac.new(secret, signing_input, hashlib.sha256).digest())
    return '%s.%s.%s' % (header, payload, signature), expires_at


def decode(secret, token, kinds, now):
    """Verify signature, expiry and kind; returns the claims dict or raises TokenInvalid."""
    parts = token.split('.') if isinstance(token, str) else []
    if len(parts) != 3:
        raise TokenInvalid('The bearer token is not a JWT.')
    signing_input = ('%s.%s' % (parts[0], parts[1])).encode('ascii', 'replace')
    expected = _b64(hmac.new(secret, signing_input, hashlib.sha256).digest())
    if not hmac.compare_digest(expected, parts[2]):
        raise TokenInvalid('The bearer token signature is invalid.')
    try:
        claims = json.loads(_unb64(parts[1]))
    except ValueError:
        raise TokenInvalid('The bearer token payload is unreadable.')
    if claims.get('iss') != ISSUER or claims.get('typ') not in kinds:
        raise TokenInvalid('The bearer token cannot be used for this operation.')
    if not isinstance(claims.get('exp'), int) or claims['exp'] <= now:
        raise TokenInvalid('The bearer token has expired.')
    return claims

"""Key material of the emulator: the KSeF issuing CA, the TLS CA and server certificate, and the
public-key certificates served by GET /security/public-key-certificates. All long-lived material is
kept in the store, so a restart with the same state file reuses it."""

import datetime
import ipaddress

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import util

CERTIFICATE_VALIDITY = datetime.timedelta(days=730)  # KSeF certificates: about 2 years (SPEC 7)


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _load_pair(blob):
    key_pem, cert_pem = blob.split(b'\n--SPLIT--\n')
    return x509.load_pem_x509_certificate(cert_pem), serialization.load_pem_private_key(key_pem, None)


def _dump_pair(cert, key):
    return _pem_key(key) + b'\n--SPLIT--\n' + _pem_cert(cert)


def _name(common_name):
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, 'PL'),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'KSeF Emulator'),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _root(common_name, key):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = _name(common_name)
    public_key = key.public_key()
    return (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .sign(key, hashes.SHA256()))


def _leaf_builder(issuer_cert, subject, public_key, serial, not_before, not_after):
    issuer_ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer_cert.subject).public_key(public_key)
            .serial_number(serial).not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False))


def _key_usage(digital_signature=False, content_commitment=False, key_encipherment=False):
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=content_commitment,
                         key_encipherment=key_encipherment, data_encipherment=False, key_agreement=False,
                         key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False)


class KeyMaterial:
    """Loads or creates every key and certificate the emulator needs."""

    def __init__(self, store):
        self.issuing_cert, self.issuing_key = _load_pair(store.meta_or_create(
            'issuing_ca', lambda: self._new_root('KSeF Emulator Issuing CA')))
        self.tls_ca_cert, self.tls_ca_key = _load_pair(store.meta_or_create(
            'tls_ca', lambda: self._new_root('KSeF Emulator TLS Root CA')))
        self.token_encryption_cert, self.token_encryption_key = _load_pair(store.meta_or_create(
            'key_ksef_token_encryption', lambda: self._new_encryption_pair('KsefTokenEncryption')))
        self.symmetric_encryption_cert, self.symmetric_encryption_key = _load_pair(store.meta_or_create(
            'key_symmetric_key_encryption', lambda: self._new_encryption_pair('SymmetricKeyEncryption')))
        self.jwt_secret = store.meta_or_create('jwt_secret', lambda: util.trace_id().encode() * 2)

    @staticmethod
    def _new_root(common_name):
        key = ec.generate_private_key(ec.SECP256R1())
        return _dump_pair(_root(common_name, key), key)

    def _new_encryption_pair(self, usage):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (_leaf_builder(self.issuing_cert, _name('KSeF Emulator %s' % usage), key.public_key(),
                              x509.random_serial_number(), now - datetime.timedelta(days=1),
                              now + datetime.timedelta(days=3650))
                .add_extension(_key_usage(key_encipherment=True), critical=True)
                .sign(self.issuing_key, hashes.SHA256()))
        return _dump_pair(cert, key)

    def public_key_certificates(self):
        """(certificate, usage) pairs served at /security/public-key-certificates."""
        return [(self.token_encryption_cert, 'KsefTokenEncryption'),
                (self.symmetric_encryption_cert, 'SymmetricKeyEncryption')]

    def tls_ca_pem(self):
        return _pem_cert(self.tls_ca_cert)

    def issue_tls_server_certificate(self, host):
        """Fresh server certificate for this run (names: host, localhost, 127.0.0.1, ::1)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        names = {'localhost'}
        addresses = {ipaddress.ip_address('127.0.0.1'), ipaddress.ip_address('::1')}
        try:
            addresses.add(ipaddress.ip_address(host))
        except ValueError:
            names.add(host)
        alt_names = [x509.DNSName(n) for n in sorted(names)] + [x509.IPAddress(a) for a in sorted(addresses, key=str)]
        cert = (_leaf_builder(self.tls_ca_cert, _name(host), key.public_key(), x509.random_serial_number(),
                              now - datetime.timedelta(hours=1), now + datetime.timedelta(days=365))
                .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
                .add_extension(_key_usage(digital_signature=True), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(self.tls_ca_key, hashes.SHA256()))
        return _pem_cert(cert), _pem_key(key)

    def issue_ksef_certificate(self, subject, public_key, serial_hex, certificate_type, valid_from, valid_to):
        """A KSeF certificate: the CSR's subject and key, serial = certificateSerialNumber.

        keyUsage is critical: digitalSignature for Authentication, nonRepudiation for Offline.
        """
        if certificate_type == 'Authentication':
            usage = _key_usage(digital_signature=True)
        else:
            usage = _key_usage(content_commitment=True)
        return (_leaf_builder(self.issuing_cert, subject, public_key, int(serial_hex, 16),
                              util.to_datetime(valid_from), util.to_datetime(valid_to))
                .add_extension(usage, critical=True)
                .sign(self.issuing_key, hashes.SHA256()))

    def issued_by_us(self, cert):
        """True when cert carries a valid signature of the emulator's issuing CA (a KSeF certificate)."""
        if cert.issuer != self.issuing_cert.subject:
            return False
        try:
            cert.verify_directly_issued_by(self.issuing_cert)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True

"""Self-signed TEST-environment signer certificates, shaped like the official clients' (SPEC.md 9.3).

Library:  make_seal(nip) / make_person(given_name, surname, nip=..|pesel=..) -> (certificate, private_key)
          valid_nip() / valid_pesel()  -> checksum-valid random identifiers (SPEC.md 3.8)
CLI:      python -m ksef_emulator.testcerts seal --nip N --cert-out F --key-out F [...]
          python -m ksef_emulator.testcerts person --given-name G --surname S (--pesel P | --nip N) ...
          python -m ksef_emulator.testcerts nip | pesel
"""

import argparse
import datetime
import os
import random
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

NIP_WEIGHTS = (6, 5, 7, 2, 3, 4, 5, 6, 7)
PESEL_WEIGHTS = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
OID_ORGANIZATION_IDENTIFIER = x509.ObjectIdentifier('2.5.4.97')

# The official C# builders back-date NotBefore by 61 minutes (clock skew) and give 2 years.
NOT_BEFORE_BACKDATE = datetime.timedelta(minutes=61)
VALIDITY = datetime.timedelta(days=730)


def _rng(seed):
    return random.Random(seed) if seed is not None else random.SystemRandom()


def nip_checksum_ok(nip):
    if len(nip) != 10 or not nip.isdigit():
        return False
    check = sum(int(d) * w for d, w in zip(nip, NIP_WEIGHTS)) % 11
    return check != 10 and check == int(nip[9])


def valid_nip(seed=None):
    """Random NIP with a valid checksum that also matches the XSD pattern [1-9]((\\d[1-9])|([1-9]\\d))\\d{7}."""
    rng = _rng(seed)
    while True:
        digits = [rng.randint(1, 9)] + [rng.randint(0, 9) for dummy in range(8)]
        if digits[1] == 0 and digits[2] == 0:
            continue
        check = sum(d * w for d, w in zip(digits, NIP_WEIGHTS)) % 11
        if check == 10:
            continue
        return ''.join(str(d) for d in digits) + str(check)


def pesel_checksum_ok(pesel):
    if len(pesel) != 11 or not pesel.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(pesel, PESEL_WEIGHTS))
    return (10 - total % 10) % 10 == int(pesel[10])


def valid_pesel(seed=None, birth_date=None, female=None):
    """Random PESEL: YYMMDD (month +20 for 2000-2099), 3 serial digits, sex digit, checksum."""
    rng = _rng(seed)
    if birth_date is None:
        birth_date = datetime.date(1950, 1, 1) + datetime.timedelta(days=rng.randint(0, 365 * 55))
    if not 1900 <= birth_date.year <= 2099:
        raise ValueError('birth_date year must be within 1900-2099')
    month = birth_date.month + (20 if birth_date.year >= 2000 else 0)
    if female is None:
        female = rng.random() < 0.5
    sex_digit = rng.choice((0, 2, 4, 6, 8) if female else (1, 3, 5, 7, 9))
    body = '%02d%02d%02d%03d%d' % (birth_date.year % 100, month, birth_date.day, rng.randint(0, 999), sex_digit)
    total = sum(int(d) * w for d, w in zip(body, PESEL_WEIGHTS))
    return body + str((10 - total % 10) % 10)


def generate_key(key_type='ec'):
    if key_type == 'ec':
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == 'rsa':
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError('key_type must be ec or rsa')


def _self_signed(subject_attributes, key, not_before=None, not_after=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.RelativeDistinguishedName([a]) for a in subject_attributes])
    builder = (x509.CertificateBuilder()
               .subject_name(name)
               .issuer_name(name)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before or now - NOT_BEFORE_BACKDATE)
               .not_valid_after(not_after or now + VALIDITY)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                            crl_sign=False, encipher_only=False, decipher_only=False),
                              critical=True))
    return builder.sign(key, hashes.SHA256())


def make_seal(nip, key_type='ec', common_name=None, organization_name=None, key=None, not_before=None,
              not_after=None):
    """Company seal: O, organizationIdentifier VATPL-<nip>, CN, C=PL (no givenName/surname)."""
    key = key if key is not None else generate_key(key_type)
    organization_name = organization_name or 'Firma testowa %s' % nip
    attributes = [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization_name),
        x509.NameAttribute(OID_ORGANIZATION_IDENTIFIER, 'VATPL-%s' % nip),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name or organization_name),
        x509.NameAttribute(NameOID.COUNTRY_NAME, 'PL'),
    ]
    return _self_signed(attributes, key, not_before, not_after), key


def make_person(given_name, surname, nip=None, pesel=None, key_type='ec', common_name=None, key=None,
                not_before=None, not_after=None):
    """Personal certificate: givenName, surname, serialNumber TINPL-<nip> or PNOPL-<pesel>, CN, C=PL."""
    if (nip is None) == (pesel is None):
        raise ValueError('give exactly one of nip or pesel')
    key = key if key is not None else generate_key(key_type)
    serial_number = 'PNOPL-%s' % pesel if pesel is not None else 'TINPL-%s' % nip
    attributes = [
        x509.NameAttribute(NameOID.GIVEN_NAME, given_name),
        x509.NameAttribute(NameOID.SURNAME, surname),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, serial_number),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name or '%s %s' % (given_name, surname)),
        x509.NameAttribute(NameOID.COUNTRY_NAME, 'PL'),
    ]
    return _self_signed(attributes, key, not_before, not_after), key


# ---------------------------------------------------------------------------------------------
# writing files


def write_private_file(path, data):
    """Create/replace a file readable by the owner only (0600 from the first byte)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def write_public_file(path, data):
    with open(path, 'wb') as handle:
        handle.write(data)


def private_key_bytes(key, key_format='pkcs8', passphrase=None, der=False):
    encoding = serialization.Encoding.DER if der else serialization.Encoding.PEM
    if key_format == 'pkcs8':
        private_format = serialization.PrivateFormat.PKCS8
    elif key_format == 'traditional':
        if der and passphrase:
            raise ValueError('an encrypted key in traditional format needs PEM (use pkcs8 for encrypted DER)')
        private_format = serialization.PrivateFormat.TraditionalOpenSSL
    else:
        raise ValueError('key_format must be pkcs8 or traditional')
    encryption = (serialization.BestAvailableEncryption(passphrase.encode('utf-8')) if passphrase
                  else serialization.NoEncryption())
    return key.private_bytes(encoding, private_format, encryption)


def write_outputs(cert, key, cert_out=None, key_out=None, passphrase=None, key_format='pkcs8', der=False,
                  pkcs12_out=None, pkcs12_passphrase=None, friendly_name=None):
    if cert_out:
        write_public_file(cert_out, cert.public_bytes(serialization.Encoding.DER if der
                                                      else serialization.Encoding.PEM))
    if key_out:
        write_private_file(key_out, private_key_bytes(key, key_format, passphrase, der))
    if pkcs12_out:
        encryption = (serialization.BestAvailableEncryption(pkcs12_passphrase.encode('utf-8'))
                      if pkcs12_passphrase else serialization.NoEncryption())
        name = (friendly_name or 'ksef-test').encode('utf-8')
        write_private_file(pkcs12_out, pkcs12.serialize_key_and_certificates(name, key, cert, None, encryption))


# ---------------------------------------------------------------------------------------------
# CLI


def _add_output_options(parser):
    parser.add_argument('--key-type', choices=('ec', 'rsa'), default='ec')
    parser.add_argument('--common-name')
    parser.add_argument('--cert-out', help='certificate file (PEM, or DER with --der)')
    parser.add_argument('--key-out', help='private key file, written with mode 0600')
    parser.add_argument('--passphrase', help='encrypt the private key with this passphrase')
    parser.add_argument('--key-format', choices=('pkcs8', 'traditional'), default='pkcs8',
                        help='pkcs8, or traditional (PKCS#1 for RSA, SEC1 for EC)')
    parser.add_argument('--der', action='store_true', help='write certificate and key as DER instead of PEM')
    parser.add_argument('--pkcs12-out', help='PKCS#12 bundle with key and certificate (mode 0600)')
    parser.add_argument('--pkcs12-passphrase')


def build_parser():
    parser = argparse.ArgumentParser(prog='python -m ksef_emulator.testcerts',
                                     description='Self-signed KSeF TEST signer certificates (seal / person).')
    commands = parser.add_subparsers(dest='command', required=True)
    seal = commands.add_parser('seal', help='company seal: O, organizationIdentifier VATPL-<nip>, CN, C=PL')
    seal.add_argument('--nip', required=True)
    seal.add_argument('--organization-name')
    _add_output_options(seal)
    person = commands.add_parser('person', help='person: givenName, surname, serialNumber TINPL-/PNOPL-, CN, C=PL')
    person.add_argument('--given-name', required=True)
    person.add_argument('--surname', required=True)
    identifier = person.add_mutually_exclusive_group(required=True)
    identifier.add_argument('--pesel')
    identifier.add_argument('--nip')
    _add_output_options(person)
    commands.add_parser('nip', help='print a random checksum-valid NIP')
    commands.add_parser('pesel', help='print a random checksum-valid PESEL')
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == 'nip':
        print(valid_nip())
        return 0
    if args.command == 'pesel':
        print(valid_pesel())
        return 0
    if not (args.cert_out or args.key_out or args.pkcs12_out):
        parser.error('give at least one of --cert-out, --key-out, --pkcs12-out')
    if args.der and args.passphrase and args.key_format == 'traditional':
        parser.error('an encrypted traditional key needs PEM; drop --der or use --key-format pkcs8')
    if args.command == 'seal':
        cert, key = make_seal(args.nip, key_type=args.key_type, common_name=args.common_name,
                              organization_name=args.organization_name)
    else:
        cert, key = make_person(args.given_name, args.surname, nip=args.nip, pesel=args.pesel,
                                key_type=args.key_type, common_name=args.common_name)
    write_outputs(cert, key, cert_out=args.cert_out, key_out=args.key_out, passphrase=args.passphrase,
                  key_format=args.key_format, der=args.der, pkcs12_out=args.pkcs12_out,
                  pkcs12_passphrase=args.pkcs12_passphrase)
    # Print only public facts; the key and passphrases never go to stdout.
    print('subject: %s' % cert.subject.rfc4514_string())
    print('serial: %X' % cert.serial_number)
    return 0


if __name__ == '__main__':
    sys.exit(main())

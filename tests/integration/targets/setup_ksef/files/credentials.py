# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make every signer credential of setup_ksef in one process (one Python start instead of six per target).

    credentials.py WORKDIR GIVEN_NAME SURNAME

Runs the ksef_emulator.testcerts command lines the tasks ran one by one, with the passphrases from the
environment (KSEF_TEST_RSA_PASSPHRASE, KSEF_TEST_P12_PASSPHRASE) instead of the command line. Prints
{"nip": ..., "pesel": ...}: the random checksum-valid identifiers the credentials were made for.
"""
import contextlib
import json
import os
import sys

from ksef_emulator import testcerts


def main():
    workdir, given_name, surname = sys.argv[1:4]
    nip, pesel = testcerts.valid_nip(), testcerts.valid_pesel()
    # testcerts prints the subject and serial of what it made: to stderr, so that stdout is the JSON alone.
    with contextlib.redirect_stdout(sys.stderr):
        make_all(workdir, given_name, surname, nip, pesel)
    print(json.dumps({'nip': nip, 'pesel': pesel}))


def make_all(workdir, given_name, surname, nip, pesel):
    def path(name):
        return os.path.join(workdir, name)

    for argv in (
            ['seal', '--nip', nip, '--key-type', 'ec', '--cert-out', path('seal-ec.pem'), '--key-out', path('seal-ec.key')],
            ['seal', '--nip', nip, '--key-type', 'rsa', '--key-format', 'pkcs8', '--passphrase', os.environ['KSEF_TEST_RSA_PASSPHRASE'],
             '--cert-out', path('seal-rsa.pem'), '--key-out', path('seal-rsa.key')],
            ['seal', '--nip', nip, '--pkcs12-out', path('seal.p12'), '--pkcs12-passphrase', os.environ['KSEF_TEST_P12_PASSPHRASE'],
             '--cert-out', path('seal-p12.pem')],
            ['person', '--given-name', given_name, '--surname', surname, '--pesel', pesel,
             '--cert-out', path('person.pem'), '--key-out', path('person.key')]):
        testcerts.main(argv)


if __name__ == '__main__':
    main()

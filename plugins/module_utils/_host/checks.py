# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Input checks of the ksef_deploy role and its host-side module (pure Python, no I/O).

Used on the controller (the role's filters) and on the hosts (ksef_deploy_host), so a value the role accepts
is one the module accepts. Every check is a full match: a trailing newline is a control character like any
other, never tolerated by an anchor.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
from typing import Any, List, Optional

# The one set of control characters (_rules): a newline in a passphrase would cut it (openssl reads one
# line), in a name or path it would forge log lines, in enrollment data it would end an OpenSSL config line.
from ansible_collections.ksef.certificates.plugins.module_utils._rules import CONTROL_CHARACTERS, SUBJECT_LAYOUT, subject_values

# ASN.1 PrintableString: the type of countryName and serialNumber in the CSR subject.
PRINTABLE_STRING = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]*")

# The openssl command line reads a passphrase from standard input as one line of at most 1023 bytes.
OPENSSL_PASSPHRASE_MAX_BYTES = 1023


def control_character_problem(value: str, what: str) -> Optional[str]:
    """None when `value` (a string) has no control character; else a sentence naming `what` and the position."""
    match = CONTROL_CHARACTERS.search(value)
    if match is None:
        return None
    return ('%s contains the control character U+%04X at position %d; control characters (newlines, tabs, ...) '
            'are not accepted' % (what, ord(match.group(0)), match.start() + 1))


def text_problem(value: Any, what: str, allow_empty: bool = False) -> Optional[str]:
    """None for a string without control characters (non-empty unless allow_empty); else the problem."""
    if not isinstance(value, str):
        return '%s must be a string, not %s' % (what, type(value).__name__)
    if not value and not allow_empty:
        return '%s must not be empty' % what
    return control_character_problem(value, what)


def passphrase_problem(passphrase: Any, what: str = 'The PKCS#12 passphrase') -> Optional[str]:
    """None when the passphrase can be used whole; the sentence otherwise (it never quotes the passphrase)."""
    if not isinstance(passphrase, str) or not passphrase:
        return '%s must be a non-empty string' % what
    match = CONTROL_CHARACTERS.search(passphrase)
    if match is not None:
        return ('%s contains a control character (U+%04X at position %d); it would not be passed whole, so it is '
                'refused' % (what, ord(match.group(0)), match.start() + 1))
    return None


def enrollment_data_problems(enrollment_data: Any) -> List[str]:
    """The problems of KSeF enrollment data as a CSR subject: [] when it can be used.

    Every value must be a string without control characters; countryName and serialNumber must be
    PrintableString; at least one attribute must be set.
    """
    if not isinstance(enrollment_data, dict):
        return ['The enrollment data must be a dictionary (ksef_certificate_info include_enrollment_data)']
    problems = []
    values = subject_values(enrollment_data)
    for attribute, value in values:
        what = 'Enrollment data field %s' % attribute.field
        problem = text_problem(value, what)
        if problem is None and attribute.string_type == 'PrintableString' and not PRINTABLE_STRING.fullmatch(value):
            problem = ('%s (%r) has characters a PrintableString cannot hold; only letters A-Z, digits, space and '
                       "' ( ) + , - . / : = ? are allowed" % (what, value))
        if problem is not None:
            problems.append(problem)
    if not values:
        problems.append('The enrollment data has none of the subject fields (%s)'
                        % ', '.join(attribute.field for attribute in SUBJECT_LAYOUT))
    return problems

# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pure parts of _host_backend.py (both backends run through the module in modules/test_ksef_deploy_host.py)."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

import pytest

from ansible_collections.ksef.certificates.plugins.module_utils._host import backend as _host_backend

UTC = datetime.timezone.utc


def test_openssl_dates_are_read_in_any_locale():
    assert _host_backend.parse_openssl_date('Dec  4 20:39:28 2027 GMT') == datetime.datetime(2027, 12, 4, 20, 39, 28, tzinfo=UTC)
    assert _host_backend.parse_openssl_date('Feb 29 00:00:00 2028 GMT').month == 2
    with pytest.raises(_host_backend.HostCryptoError):
        _host_backend.parse_openssl_date('gru  4 20:39:28 2027 GMT')


def test_subject_argument_escapes_every_separator_in_the_layout_order():
    argument = _host_backend.subject_argument({'countryName': 'PL', 'commonName': u'a/b+c\\d=e ż'})
    assert argument == u'/2.5.4.3=a\\/b\\+c\\\\d\\=e ż/2.5.4.6=PL'

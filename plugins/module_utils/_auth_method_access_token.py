# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# This module_utils is PRIVATE and for internal use of the ksef.certificates collection only.
"""Authentication with an access token obtained before (ksef_session): used as is, no login."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional

from ansible_collections.ksef.certificates.plugins.module_utils._api import KsefAuthApi
from ansible_collections.ksef.certificates.plugins.module_utils._auth_method_base import AuthMethod, check_token

if TYPE_CHECKING:  # for the hints only: _connection imports the methods (a cycle at run time)
    from ansible_collections.ksef.certificates.plugins.module_utils._connection import ConnectionOptions


class AccessTokenAuthMethod(AuthMethod):
    NAME = 'access_token'
    OPTIONS = {'access_token': dict(type='str', no_log=True)}
    LOGS_IN = False

    @classmethod
    def applies(cls, params: Mapping[str, Any]) -> bool:
        return bool(params.get('access_token'))

    @property
    def token(self) -> Optional[str]:
        return self.options['access_token']

    @classmethod
    def check_given(cls, params: Mapping[str, Any]) -> None:
        check_token('access_token', params.get('access_token'))

    def start(self, gateway: KsefAuthApi, challenge: Dict[str, Any], connection: 'ConnectionOptions', now: float) -> Dict[str, Any]:
        raise AssertionError('an access token is used as is; there is no login to start')  # pragma: no cover

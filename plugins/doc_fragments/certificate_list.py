# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # The certificates list of ksef.certificates.ksef_certificate: the per-certificate options once per item.
    DOCUMENTATION = r'''
options:
  certificates:
    description:
      - Manage several certificates in one task (one login, one query for the whole set).
      - Each item takes the per-certificate options; top-level options act as defaults for the items.
      - A name and type pair may appear only once, and no two items may share a file.
    type: list
    elements: dict
    suboptions:
      name:
        description: See O(name).
        type: str
        required: true
      type:
        description: See O(type). Defaults to the top-level O(type).
        type: str
        choices: [authentication, offline]
      state:
        description: See O(state). Defaults to the top-level O(state).
        type: str
        choices: [present, absent]
      private_key_path:
        description: See O(private_key_path).
        type: str
      key_backend:
        description: See O(key_backend). Defaults to the top-level value.
        type: str
        choices: [file, pkcs11]
      pkcs11_module:
        description: See O(pkcs11_module). Defaults to the top-level value.
        type: path
      pkcs11_token_label:
        description: See O(pkcs11_token_label). Defaults to the top-level value.
        type: str
      pkcs11_pin:
        description: See O(pkcs11_pin). Defaults to the top-level value.
        type: str
      pkcs11_key_label:
        description: See O(pkcs11_key_label). Defaults to the item's O(certificates[].name).
        type: str
      private_key_type:
        description: See O(private_key_type). Defaults to the top-level value.
        type: str
        choices: [ec, rsa]
      private_key_passphrase:
        description: See O(private_key_passphrase). Defaults to the top-level value.
        type: str
      csr_path:
        description: See O(csr_path).
        type: str
      csr_content:
        description: See O(csr_content).
        type: str
      certificate_path:
        description: See O(certificate_path).
        type: str
      pkcs12_path:
        description: See O(pkcs12_path).
        type: str
      pkcs12_passphrase:
        description: See O(pkcs12_passphrase). Defaults to the top-level value.
        type: str
      pkcs12_unencrypted:
        description: See O(pkcs12_unencrypted). Defaults to the top-level value.
        type: bool
      state_path:
        description: See O(state_path).
        type: str
      renew_before_days:
        description: See O(renew_before_days). Defaults to the top-level value.
        type: int
      force:
        description: See O(force). Defaults to the top-level value.
        type: bool
      replace_missing_key:
        description: See O(replace_missing_key). Defaults to the top-level value.
        type: bool
      valid_from:
        description: See O(valid_from). Defaults to the top-level value.
        type: str
      revoke_superseded:
        description: See O(revoke_superseded). Defaults to the top-level value, else by type.
        type: bool
      caller_revokes_superseded:
        description: See O(caller_revokes_superseded). Defaults to the top-level value.
        type: bool
      revocation_reason:
        description: See O(revocation_reason). Defaults to the top-level value.
        type: str
        choices: [unspecified, superseded, key_compromise]
      remove_files:
        description: See O(remove_files). Defaults to the top-level value.
        type: bool
      backup:
        description: See O(backup). Defaults to the top-level value.
        type: bool
      backup_keep:
        description: See O(backup_keep). Defaults to the top-level value.
        type: int
      return_content:
        description: See O(return_content). Defaults to the top-level value.
        type: bool
      wait:
        description: See O(wait). Defaults to the top-level value.
        type: bool
      wait_timeout:
        description: See O(wait_timeout). Defaults to the top-level value.
        type: int
'''

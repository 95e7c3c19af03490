# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs ksef_certificate's real file code for test_file_modes_trace.py, which traces it with strace.

    python trace_install.py DIRECTORY install   first install (key generated in place, certificate, PKCS#12),
                                                then a renewal with backup: true (a .next key moved over the key,
                                                backups of key, certificate and PKCS#12)
    python trace_install.py DIRECTORY control   AnsibleModule.backup_local of a 0600 key (what the module used
                                                before): the trace must show the checker catching it

The umask is 0, the worst case: a file's creation mode is then exactly the mode the code asks for.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import os
import pathlib
import sys


def install(directory):
    from ansible_collections.ksef.certificates.tests.unit.plugins.fake_ksef import (
        FakeClock,
        FakeKsef,
        Run,
        single,
    )
    clock = FakeClock()
    ksef = FakeKsef(clock)
    run = Run(ksef, clock)
    args = single(directory, pkcs12_path=str(directory / 'erp-production.p12'), pkcs12_passphrase='p12 secret',
                  private_key_passphrase='key secret', backup=True, backup_keep=2)
    first = run(args)
    assert first['action'] == 'enrolled', first
    ksef.by_serial(ksef.active()[0])['valid_to'] = clock.now() + datetime.timedelta(days=3)
    second = run(args)
    assert second['action'] == 'renewed' and len(second['backup_files']) == 3, second
    print('\n'.join(second['backup_files']))


def control(directory):
    from ansible.module_utils.basic import AnsibleModule
    from ansible_collections.ksef.certificates.tests.unit.conftest import module_args
    key = directory / 'erp-production.key'
    descriptor = os.open(str(key), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(descriptor, b'-----BEGIN PRIVATE KEY-----\n')
    os.close(descriptor)
    with module_args({}):
        module = AnsibleModule(argument_spec={})
    print(module.backup_local(str(key)))


def main():
    os.umask(0)
    directory = pathlib.Path(sys.argv[1])
    {'install': install, 'control': control}[sys.argv[2]](directory)


if __name__ == '__main__':
    main()

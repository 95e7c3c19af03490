# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin of ksef_deploy_host: reads key_src and certificate_src on the controller, then runs the module.

The controller files are opened literally (no ~user or $VAR expansion, unlike lookup('file') and the copy
module's src), and their content is handed to the module as key_content / certificate_content, which the
module writes atomically (0600 from the first byte). key_content is a no_log option, so the key never shows
in output.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

SOURCES = (('key_src', 'key_content'), ('certificate_src', 'certificate_content'))


def read_controller_file(path, option):
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except (IOError, OSError) as exc:
        raise AnsibleActionFail('Cannot read %s %s on the controller: %s' % (option, path, exc.strerror))
    try:
        return to_text(data, errors='strict')
    except UnicodeError:
        raise AnsibleActionFail('%s %s is not a PEM text file' % (option, path))


class ActionModule(ActionBase):

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        module_args = dict(self._task.args)
        for source_option, content_option in SOURCES:
            path = module_args.pop(source_option, None)
            if path is None:
                continue
            if module_args.get(content_option) is not None:
                raise AnsibleActionFail('Set %s or %s, not both' % (source_option, content_option))
            module_args[content_option] = read_controller_file(path, source_option)
        result.update(self._execute_module(module_name='ksef.certificates.ksef_deploy_host', module_args=module_args,
                                           task_vars=task_vars))
        return result

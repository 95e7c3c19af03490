# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin of ksef_deploy_host: reads key_src and certificate_src on the controller, then runs the module.

For the ksef_deploy role it also does, on the controller:
- operation=prepare with settings: resolves and checks this host's declarations (one short line per broken rule
  and per value of a wrong type, before anything reaches the host), then runs the module once for the directories, the inspection of every
  key-on-host certificate and the modes of the installed ones; returns declarations and inspections too;
- operation=account: no module; changed, failed (with each failing certificate's reason) and, in diff mode,
  the before/after of this host's certificates, from the role's ksef_deploy_result lines.

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

from ansible_collections.ksef.certificates.plugins.plugin_utils import _deploy, _deploy_account

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


def prepare_args(module_args, settings, host):
    """The module's arguments for the role's one call on host, and its declarations (without passphrases)."""
    try:
        items, problems = _deploy.checked_declarations(settings, host)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleActionFail('The ksef_deploy declarations of %s cannot be read: %s' % (host, exc))
    if problems:
        raise AnsibleActionFail('; '.join(problems))
    host_items = [item for item in items if item['key_location'] == 'host']
    module_args.update(
        directories=_deploy.directories(items),
        certificates=[dict((option, item[field]) for option, field in (
            ('key_path', 'key_path'), ('next_key_path', 'next_key_path'), ('certificate_path', 'certificate_path'),
            ('renew_before_days', 'renew_before_days'), ('key_mode', 'key_file_mode'),
            ('certificate_mode', 'certificate_file_mode'), ('owner', 'owner'), ('group', 'group'))) for item in host_items])
    return [dict(item, pkcs12_passphrase='') for item in items], host_items


def account_result(lines, diffs, diff_mode):
    """changed / failed / diff of the role's account of a host (no module runs)."""
    result = {'changed': any(line.get('changed') for line in lines or [])}
    failures = [line['failure'] for line in lines or [] if line.get('failed')]
    if failures:
        result.update(failed=True, msg='; '.join(failures))
    if diff_mode:
        diff = _deploy_account.host_diff(lines, diffs)
        if diff is not None:
            result['diff'] = diff
    return result


class ActionModule(ActionBase):

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        module_args = dict(self._task.args)
        if module_args.get('operation') == 'account':
            result.update(account_result(module_args.get('account'), module_args.get('diffs'),
                                         bool(self._play_context.diff)))
            return result
        settings = module_args.pop('settings', None)
        declared = None
        if settings is not None:
            if module_args.get('operation') != 'prepare':
                raise AnsibleActionFail('settings go with operation=prepare')
            declared, host_items = prepare_args(module_args, settings, task_vars.get('inventory_hostname', ''))
        for source_option, content_option in SOURCES:
            path = module_args.pop(source_option, None)
            if path is None:
                continue
            if module_args.get(content_option) is not None:
                raise AnsibleActionFail('Set %s or %s, not both' % (source_option, content_option))
            module_args[content_option] = read_controller_file(path, source_option)
        result.update(self._execute_module(module_name='ksef.certificates.ksef_deploy_host', module_args=module_args,
                                           task_vars=task_vars))
        if declared is not None and not result.get('failed'):
            # As a registered loop of operation=info would give them, for plugin_utils/_deploy.plan.
            result['declarations'] = declared
            result['inspections'] = [dict(found, item=item) for item, found in zip(host_items, result['certificates'])]
        return result

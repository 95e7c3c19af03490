# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Render a custom credential type's injectors the way AWX does for a job, for tests.

Follows AWX's documented injector semantics (docs "Custom Credential Types", and
CredentialType.inject_credential in awx/main/models/credential):
- the template namespace holds the credential's inputs that are set: empty strings are left out (so
  `{{ field | default('') }}` matters), booleans are kept and a boolean field not given is False;
  input defaults are not applied at injection time (the UI fills them in when the credential is made);
- every file injector is rendered (sandboxed Jinja2, undefined names render as ''), written to a new
  0600 file under <private_data_dir>/env, and its path published as `tower.filename` (key `template`)
  or `tower.filename.NAME` (keys `template.NAME`); the two forms cannot be mixed;
- then each env injector is rendered with the same namespace; variables AWX reserves are refused,
  as AWX refuses them when the credential type is saved;
- extra_vars injectors are rendered the same way, recursively.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import stat
import tempfile

from jinja2.sandbox import ImmutableSandboxedEnvironment

# AWX refuses these names in env injectors (CredentialType.ENV_BLOCKLIST) and any ANSIBLE_* name.
ENV_BLOCKLIST = {'VIRTUAL_ENV', 'PATH', 'PYTHONPATH', 'JOB_ID', 'INVENTORY_ID', 'INVENTORY_SOURCE_ID',
                 'INVENTORY_UPDATE_ID', 'AD_HOC_COMMAND_ID', 'REST_API_URL', 'REST_API_TOKEN', 'MAX_EVENT_RES',
                 'CALLBACK_QUEUE', 'CALLBACK_CONNECTION', 'CACHE', 'JOB_CALLBACK_DEBUG', 'INVENTORY_HOSTVARS',
                 'AWX_HOST', 'PROJECT_REVISION', 'SUPERVISOR_CONFIG_PATH'}
FILE_LABEL = re.compile(r'^template(\.[a-zA-Z_]+[a-zA-Z0-9_]*)?$')


class TowerNamespace:
    """The `tower` object of the templates (AWX's TowerNamespace): attributes set as files are written."""


class InjectorError(ValueError):
    pass


def _namespace(credential_type, inputs):
    fields = credential_type.get('inputs', {}).get('fields', [])
    known = set(field['id'] for field in fields)
    unknown = set(inputs) - known
    if unknown:
        raise InjectorError('inputs not defined by the credential type: %s' % sorted(unknown))
    missing = [name for name in credential_type.get('inputs', {}).get('required', []) if inputs.get(name) in (None, '')]
    if missing:
        raise InjectorError('required inputs missing: %s' % missing)
    namespace = {}
    for name, value in inputs.items():
        if isinstance(value, bool):
            namespace[name] = value
        elif value is not None and len(value):
            namespace[name] = value
    for field in fields:
        if field.get('type') == 'boolean' and field['id'] not in inputs:
            namespace[field['id']] = False
        if field.get('format') == 'ssh_private_key' and field['id'] in namespace \
                and not namespace[field['id']].endswith('\n'):
            namespace[field['id']] += '\n'
    return namespace


def render(credential_type, inputs, private_data_dir):
    """{'env': {...}, 'extra_vars': {...}, 'files': {label: path}} for a credential with these inputs."""
    namespace = _namespace(credential_type, inputs)
    tower = TowerNamespace()
    namespace['tower'] = tower
    sandbox = ImmutableSandboxedEnvironment()
    injectors = credential_type.get('injectors', {})

    file_templates = injectors.get('file', {}) or {}
    labels = list(file_templates)
    for label in labels:
        if not FILE_LABEL.match(label):
            raise InjectorError('file injector %r: AWX accepts "template" or "template.NAME"' % label)
    if 'template' in labels and len(labels) > 1:
        raise InjectorError('file injectors mix "template" and "template.NAME"')
    files = {}
    env_dir = os.path.join(private_data_dir, 'env')
    if not os.path.isdir(env_dir):
        os.makedirs(env_dir, mode=0o700)
    for label, template in file_templates.items():
        data = sandbox.from_string(template).render(**namespace)
        handle, path = tempfile.mkstemp(dir=env_dir)
        with os.fdopen(handle, 'w') as output:
            output.write(data)
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        files[label] = path
        if '.' not in label:
            tower.filename = path
        else:
            if not hasattr(tower, 'filename'):
                tower.filename = TowerNamespace()
            setattr(tower.filename, label.split('.', 1)[1], path)

    env = {}
    for name, template in (injectors.get('env', {}) or {}).items():
        if name in ENV_BLOCKLIST or name.startswith('ANSIBLE_'):
            raise InjectorError('AWX refuses the env injector %s' % name)
        env[name] = sandbox.from_string(template).render(**namespace)

    def build(node):
        if isinstance(node, dict):
            return dict((key, build(value)) for key, value in node.items())
        if isinstance(node, list):
            return [build(value) for value in node]
        if isinstance(node, str):
            return sandbox.from_string(node).render(**namespace)
        return node

    extra_vars = build(injectors.get('extra_vars', {}) or {})
    return {'env': env, 'extra_vars': extra_vars, 'files': files}

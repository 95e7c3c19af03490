# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The two boundaries of module_utils, read from the import statements (docs/ARCHITECTURE.md, "Layout").

- `_host/` is what ksef_deploy_host ships to a managed host. With everything it imports, directly or through
  another file of the collection, it never reaches the gateway (`_api`, `_http*`, `_auth*`, `_connection`,
  `_module`), the engine (`_engine/`) or `requests`: a host needs neither KSeF nor a network client, and a key
  kept on a host is handled only by code that cannot talk to KSeF.
- `_engine/` is ksef_certificate's engine. The shared flat files and the gateway never import it; outside it,
  only the modules ksef_certificate and ksef_certificate_proof and the report's forecast (plugin_utils/_report.py) do.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast
import os

from ansible_collections.ksef.certificates.plugins.module_utils import _api

MODULE_UTILS = os.path.dirname(os.path.abspath(_api.__file__))
PLUGINS = os.path.dirname(MODULE_UTILS)
PACKAGE = 'ansible_collections.ksef.certificates.plugins.module_utils'

GATEWAY_PREFIXES = ('_api', '_http', '_auth', '_connection', '_module', '_pacing', '_records', '_tokens', '_login')
HOST_ENTRY_POINTS = [os.path.join(PLUGINS, 'modules', 'ksef_deploy_host.py')]
# ksef_certificate_proof: the proof of a successor whose key stays on a managed host (_engine/remote_proof.py).
ENGINE_USERS = {os.path.join('modules', 'ksef_certificate.py'), os.path.join('modules', 'ksef_certificate_proof.py')}
# The controller-side plugins that read only the pure wave planner and forecast (no I/O, no clock), never the rest of
# the engine: the report's forecast and the role's check-mode prediction of its renewal waves.
PLANNER_USERS = {os.path.join('plugin_utils', '_report.py'), os.path.join('plugin_utils', '_deploy_waves.py')}
PLANNER = PACKAGE + '._engine.waves'


def imported_names(path):
    """Every module a file imports: dotted names, `from X import Y` giving both X and X.Y (Y may be a module)."""
    with open(path) as handle:
        tree = ast.parse(handle.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update('%s.%s' % (node.module, alias.name) for alias in node.names)
    return names


def collection_file(name):
    """The module_utils file of a dotted import name, or None when it is not one of ours."""
    if not name.startswith(PACKAGE + '.'):
        return None
    path = os.path.join(MODULE_UTILS, *name[len(PACKAGE) + 1:].split('.')) + '.py'
    return path if os.path.isfile(path) else None


def closure(paths):
    """The collection files `paths` import, directly or through each other, and every name imported on the way."""
    seen, names, todo = set(), set(), list(paths)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_names(path):
            names.add(name)
            found = collection_file(name)
            if found:
                todo.append(found)
    return seen, names


def relative(path):
    return os.path.relpath(path, MODULE_UTILS)


def host_files():
    directory = os.path.join(MODULE_UTILS, '_host')
    return sorted(os.path.join(directory, name) for name in os.listdir(directory) if name.endswith('.py'))


def is_gateway(path):
    name = relative(path)
    return os.sep not in name and name.startswith(GATEWAY_PREFIXES)


def test_host_code_never_reaches_the_gateway_the_engine_or_requests():
    files, names = closure(host_files() + HOST_ENTRY_POINTS)
    assert os.path.join(MODULE_UTILS, '_host', 'operations.py') in files      # the walk follows our imports
    crossing = sorted(relative(path) for path in files if is_gateway(path) or relative(path).startswith('_engine'))
    assert not crossing, 'host code imports %s' % crossing
    networked = sorted(name for name in names if name.split('.')[0] in ('requests', 'urllib3'))
    assert not networked, 'host code imports %s' % networked


def test_the_walk_sees_a_crossing():
    """The closure really follows imports: from the engine it reaches the gateway."""
    files, dummy = closure([os.path.join(MODULE_UTILS, '_engine', 'converge.py')])
    assert any(is_gateway(path) for path in files)


def planner_only(name):
    return name in (PACKAGE + '._engine', PLANNER) or name.startswith(PLANNER + '.')


def test_only_the_engine_modules_import_the_engine_and_the_planner_users_only_the_planner():
    importers = {}
    for directory, dummy, names in os.walk(PLUGINS):
        for name in names:
            path = os.path.join(directory, name)
            if not name.endswith('.py') or path.startswith(os.path.join(MODULE_UTILS, '_engine') + os.sep):
                continue
            engine = set(imported for imported in imported_names(path) if imported.startswith(PACKAGE + '._engine'))
            if engine:
                importers[os.path.relpath(path, PLUGINS)] = engine
    beyond = sorted(path for path, engine in importers.items()
                    if path not in ENGINE_USERS and not (path in PLANNER_USERS and all(planner_only(name) for name in engine)))
    assert beyond == []
    assert os.path.join('modules', 'ksef_certificate.py') in importers

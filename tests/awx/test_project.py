# Copyright (c) ksef.certificates contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""docs/awx/project and docs/awx/surveys against the collection's playbooks (test_runner.py runs them).

- every project playbook imports the collection playbook of its name; collections/requirements.yml names the
  collection;
- every survey is a valid AWX survey spec, and each question is a variable that its playbook (or the role the
  playbook runs) reads, with choices the playbook accepts.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
AWX = os.path.join(REPO, 'docs', 'awx')
PLAYBOOKS = ('provision', 'report', 'revoke', 'migrate_token')
# AWX's survey question types, and the keys a question must have (awx/api/views/mixin.py survey_spec validation).
SURVEY_TYPES = ('text', 'textarea', 'password', 'integer', 'float', 'multiplechoice', 'multiselect')
QUESTION_KEYS = ('question_name', 'variable', 'type', 'required')


def load_yaml(*parts):
    with open(os.path.join(*parts), encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def read(*parts):
    with open(os.path.join(*parts), encoding='utf-8') as handle:
        return handle.read()


@pytest.mark.parametrize('name', PLAYBOOKS)
def test_each_project_playbook_imports_the_collection_playbook(name):
    plays = load_yaml(AWX, 'project', name + '.yml')
    assert plays[0]['ansible.builtin.import_playbook'] == 'ksef.certificates.' + name
    assert os.path.exists(os.path.join(REPO, 'playbooks', name + '.yml'))


def test_the_project_requirements_name_the_collection():
    names = [entry['name'] for entry in load_yaml(AWX, 'project', 'collections', 'requirements.yml')['collections']]
    assert 'ksef.certificates' in names and 'awx.awx' in names


def role_variables():
    specs = load_yaml(REPO, 'roles', 'ksef_deploy', 'meta', 'argument_specs.yml')
    return specs['argument_specs']['main']['options']


@pytest.mark.parametrize('name', ['provision', 'revoke'])
def test_the_survey_is_a_valid_awx_survey_spec(name):
    survey = json.loads(read(AWX, 'surveys', name + '.json'))
    assert set(survey) == {'name', 'description', 'spec'} and survey['spec']
    variables = [question['variable'] for question in survey['spec']]
    assert len(variables) == len(set(variables))
    for question in survey['spec']:
        assert all(key in question for key in QUESTION_KEYS), question
        assert question['type'] in SURVEY_TYPES and re.match(r'^[a-zA-Z_][a-zA-Z0-9_]*$', question['variable'])
        if question['type'] in ('multiplechoice', 'multiselect'):
            assert question['choices'] and question.get('default', question['choices'][0]) in question['choices']
        if question['type'] in ('text', 'textarea', 'password'):
            assert question['min'] <= len(question['default']) <= question['max']


def survey_questions(name):
    return dict((question['variable'], question) for question in json.loads(read(AWX, 'surveys', name + '.json'))['spec'])


def test_the_revoke_survey_asks_what_the_revoke_playbook_reads_and_accepts():
    questions = survey_questions('revoke')
    playbook = read(REPO, 'playbooks', 'revoke.yml')
    header = playbook.split('\n- name:')[0]
    for variable in questions:
        assert variable in header, '%s is not documented in playbooks/revoke.yml' % variable
        assert re.search(r'\b%s\b' % variable, playbook.split(header, 1)[1]), '%s is not used' % variable
    # The choices are exactly the values the playbook's check accepts.
    assert "ksef_revoke_type | default('') in %s" % json.dumps(questions['ksef_revoke_type']['choices']).replace('"', "'") \
        in playbook
    assert "ksef_revoke_reason | default('unspecified') in %s" % json.dumps(
        questions['ksef_revoke_reason']['choices']).replace('"', "'") in playbook
    assert questions['ksef_revoke_reason']['default'] == 'unspecified'


def test_the_provision_survey_asks_what_the_provision_playbook_or_its_role_reads():
    questions = survey_questions('provision')
    playbook = read(REPO, 'playbooks', 'provision.yml')
    options = role_variables()
    for variable, question in questions.items():
        if variable in options:
            option = options[variable]
            if option['type'] == 'bool':
                # A survey answers text: the role reads the answer with `| bool`.
                assert question['type'] == 'multiplechoice' and question['choices'] == ['false', 'true']
                assert question['default'] == str(option['default']).lower()
                assert '%s | bool' % variable in read(REPO, 'roles', 'ksef_deploy', 'tasks', 'controller_keys.yml')
        else:
            assert re.search(r'#\s+%s\s' % variable, playbook), '%s is not documented in playbooks/provision.yml' % variable
            assert playbook.count(variable) >= 2, '%s is not used in playbooks/provision.yml' % variable

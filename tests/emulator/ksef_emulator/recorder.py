"""Request log: GET /emulator/requests and the optional --record-dir files.

For every API request (paths outside /emulator) a record {seq, time, method, path, query, route,
status, contentType, responseContentType, fault} is kept in memory; with a record directory it is
also written as <seq>.json, and the raw request body (when there is one) as <seq>.body.
"""

import json
import os
import re
import threading

from . import util


class Recorder:
    def __init__(self, record_dir=None):
        self.record_dir = record_dir
        self._lock = threading.Lock()
        self._records = []
        self._seq = 0
        if record_dir:
            os.makedirs(record_dir, exist_ok=True)
            # Continue numbering after a restart instead of overwriting earlier files.
            numbers = [int(m.group(1)) for m in (re.match(r'^(\d+)\.json$', n) for n in os.listdir(record_dir)) if m]
            self._seq = max(numbers, default=0)

    def begin(self, method, path, query, route, content_type, body):
        with self._lock:
            self._seq += 1
            record = {'seq': self._seq, 'time': util.iso(util.now()), 'method': method, 'path': path,
                      'query': query, 'route': route, 'status': None, 'contentType': content_type or None,
                      'responseContentType': None, 'fault': None}
            self._records.append(record)
        if self.record_dir and body:
            with open(os.path.join(self.record_dir, '%d.body' % record['seq']), 'wb') as handle:
                handle.write(body)
        return record

    def finish(self, record, status, response_content_type, fault=None):
        with self._lock:
            record['status'] = status
            record['responseContentType'] = response_content_type or None
            record['fault'] = fault
            snapshot = dict(record)
        if self.record_dir:
            path = os.path.join(self.record_dir, '%d.json' % snapshot['seq'])
            with open(path + '.tmp', 'w', encoding='utf-8') as handle:
                json.dump(snapshot, handle, ensure_ascii=False, indent=1)
            os.replace(path + '.tmp', path)

    def list(self, since=0):
        with self._lock:
            return [dict(r) for r in self._records if r['seq'] > since]

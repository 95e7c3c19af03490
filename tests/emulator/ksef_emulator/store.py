"""SQLite state of the emulator (file with --state, else in memory), safe to share between threads.

Every read-modify-write sequence of a request runs inside `with store.transaction():`, which holds one
re-entrant lock and commits at the end (rolls back on an exception), so concurrent requests see
consistent state. Values are plain rows; JSON columns are decoded by the helpers below.
"""

import contextlib
import json
import os
import sqlite3
import threading

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS challenges (
    challenge TEXT PRIMARY KEY, created REAL NOT NULL, client_ip TEXT, used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS auth_operations (
    reference_number TEXT PRIMARY KEY, started REAL NOT NULL, ready_at REAL NOT NULL, method TEXT NOT NULL,
    context_type TEXT NOT NULL, context_value TEXT NOT NULL, subject_type TEXT, subject_value TEXT,
    signer_der BLOB, ksef_token_reference TEXT, status_code INTEGER NOT NULL, status_description TEXT NOT NULL,
    status_details TEXT, method_info TEXT NOT NULL, authentication_method TEXT NOT NULL, allowed_ips TEXT,
    redeemed INTEGER NOT NULL DEFAULT 0, session_revoked INTEGER NOT NULL DEFAULT 0,
    refresh_valid_until REAL, last_refresh REAL);
CREATE TABLE IF NOT EXISTS ksef_tokens (
    reference_number TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE, context_type TEXT NOT NULL,
    context_value TEXT NOT NULL, author_type TEXT NOT NULL, author_value TEXT NOT NULL, permissions TEXT NOT NULL,
    description TEXT NOT NULL, created REAL NOT NULL, status TEXT NOT NULL, last_use REAL,
    status_due REAL);
CREATE TABLE IF NOT EXISTS enrollments (
    reference_number TEXT PRIMARY KEY, subject_type TEXT NOT NULL, subject_value TEXT NOT NULL,
    name TEXT NOT NULL, certificate_type TEXT NOT NULL, csr_der BLOB NOT NULL, valid_from REAL,
    requested REAL NOT NULL, status_code INTEGER NOT NULL, status_description TEXT NOT NULL,
    status_details TEXT, serial_number TEXT);
CREATE TABLE IF NOT EXISTS certificates (
    serial_number TEXT PRIMARY KEY, subject_type TEXT NOT NULL, subject_value TEXT NOT NULL, name TEXT NOT NULL,
    certificate_type TEXT NOT NULL, common_name TEXT NOT NULL, der BLOB NOT NULL, public_key_sha256 TEXT NOT NULL,
    valid_from REAL NOT NULL, valid_to REAL NOT NULL, requested REAL NOT NULL, status TEXT NOT NULL,
    revocation_reason TEXT, revoked REAL, last_use REAL, enrollment_reference TEXT);
CREATE TABLE IF NOT EXISTS persons (
    nip TEXT NOT NULL, pesel TEXT NOT NULL, description TEXT, is_bailiff INTEGER NOT NULL DEFAULT 0,
    is_deceased INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (nip, pesel));
CREATE TABLE IF NOT EXISTS permissions (
    context_type TEXT NOT NULL, context_value TEXT NOT NULL, authorized_type TEXT NOT NULL,
    authorized_value TEXT NOT NULL, permission TEXT NOT NULL, description TEXT,
    PRIMARY KEY (context_type, context_value, authorized_type, authorized_value, permission));
CREATE TABLE IF NOT EXISTS subject_limits (
    subject_type TEXT NOT NULL, subject_value TEXT NOT NULL, max_enrollments INTEGER, max_certificates INTEGER,
    PRIMARY KEY (subject_type, subject_value));
CREATE TABLE IF NOT EXISTS active_peaks (
    subject_type TEXT NOT NULL, subject_value TEXT NOT NULL, peak INTEGER NOT NULL, reached REAL NOT NULL,
    PRIMARY KEY (subject_type, subject_value));
CREATE TABLE IF NOT EXISTS rate_limit_overrides (context_key TEXT PRIMARY KEY, limits TEXT NOT NULL);
"""

JSON_COLUMNS = ('status_details', 'method_info', 'allowed_ips', 'permissions', 'limits')


def _decode_row(row):
    if row is None:
        return None
    item = dict(row)
    for column in JSON_COLUMNS:
        if column in item and item[column] is not None:
            item[column] = json.loads(item[column])
    return item


def _encode_value(value):
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value


class Store:
    def __init__(self, path=None):
        self.path = path
        self._lock = threading.RLock()
        if path and not os.path.exists(path):
            # The state holds the emulator's CA private keys: owner-only from the first byte.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._db = sqlite3.connect(path or ':memory:', check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        if path:
            self._db.execute('PRAGMA journal_mode=WAL')
        self._db.executescript(SCHEMA)
        # A state file written before tokens had timed statuses gets the column (the demo keeps its state).
        token_columns = [row[1] for row in self._db.execute('PRAGMA table_info(ksef_tokens)')]
        if 'status_due' not in token_columns:
            self._db.execute('ALTER TABLE ksef_tokens ADD COLUMN status_due REAL')
        self._depth = 0

    @contextlib.contextmanager
    def transaction(self):
        """Hold the store lock; the outermost level commits (or rolls back on error)."""
        with self._lock:
            outermost = self._depth == 0
            if outermost:
                self._db.execute('BEGIN IMMEDIATE')
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if outermost:
                    self._db.execute('ROLLBACK')
                raise
            self._depth -= 1
            if outermost:
                self._db.execute('COMMIT')

    def close(self):
        with self._lock:
            self._db.close()

    # Generic helpers (callers hold a transaction for multi-statement updates).
    def one(self, sql, params=()):
        with self._lock:
            return _decode_row(self._db.execute(sql, params).fetchone())

    def all(self, sql, params=()):
        with self._lock:
            return [_decode_row(row) for row in self._db.execute(sql, params).fetchall()]

    def scalar(self, sql, params=()):
        with self._lock:
            row = self._db.execute(sql, params).fetchone()
            return row[0] if row is not None else None

    def execute(self, sql, params=()):
        with self.transaction():
            return self._db.execute(sql, [_encode_value(p) for p in params]).rowcount

    def insert(self, table, values):
        columns = ', '.join(values)
        marks = ', '.join('?' for dummy in values)
        self.execute('INSERT INTO %s (%s) VALUES (%s)' % (table, columns, marks), list(values.values()))

    def update(self, table, key_column, key, values):
        assignments = ', '.join('%s = ?' % column for column in values)
        return self.execute('UPDATE %s SET %s WHERE %s = ?' % (table, assignments, key_column),
                            list(values.values()) + [key])

    # Key/value metadata: CA material, secrets.
    def get_meta(self, key):
        return self.scalar('SELECT value FROM meta WHERE key = ?', (key,))

    def set_meta(self, key, value):
        self.execute('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)', (key, value))

    def meta_or_create(self, key, factory):
        """Return the stored value, creating it with factory() once (kept across restarts)."""
        with self.transaction():
            value = self.get_meta(key)
            if value is None:
                value = factory()
                self.set_meta(key, value)
            return value

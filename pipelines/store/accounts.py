"""Named accounts for the dashboard: users with a role (查看者, 分析人员, 管理员) and, for a viewer,
an optional city; scrypt password hashes; a lockout counted in the file (so parallel sessions
share it); server-side sign-in tokens that sign-out ends and idleness expires.

The accounts live in a small SQLite file next to the warehouse (`<warehouse>.users.sqlite`, or
`$CEPING_USERS`), not in the warehouse itself: the dashboard holds the warehouse's one writable
DuckDB connection, and an administrator must be able to add or disable a user from the shell
while it runs. SQLite serialises writers across processes, so the failure counter is exact.
Every account change is recorded with who made it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

VIEWER, ANALYST, ADMIN = "viewer", "analyst", "admin"
ROLES = {VIEWER: "查看者", ANALYST: "分析人员", ADMIN: "管理员"}
USERS_ENV = "CEPING_USERS"
MAX_FAILURES_ENV, LOCK_MINUTES_ENV, IDLE_MINUTES_ENV = \
    "CEPING_LOCKOUT_FAILURES", "CEPING_LOCKOUT_MINUTES", "CEPING_IDLE_MINUTES"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 15, 8, 1      # ~0.1 s and 32 MiB per check
MIN_PASSWORD = 8

SCHEMA = """
create table if not exists users (
    name text primary key, role text not null, city_code text, hash text not null,
    disabled integer not null default 0, created_at real not null, changed_at real not null);
create table if not exists failures (
    name text primary key, count integer not null, locked_until real not null default 0);
create table if not exists sessions (
    token_sha256 text primary key, name text not null, created_at real not null,
    last_seen real not null, ended_at real, client text not null default '');
create table if not exists events (
    at real not null, by_user text not null, action text not null, name text, detail text);
"""


class AccountError(Exception):
    """A refused account operation; the message is Chinese and safe to show."""


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    city_code: str | None
    disabled: bool

    @property
    def role_label(self) -> str:
        return ROLES[self.role]


def _setting(variable: str, default: int) -> int:
    raw = os.environ.get(variable, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else default


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=64 * 1024 * 1024, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}$" \
           f"{base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        actual = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n),
                                r=int(r), p=int(p), maxmem=64 * 1024 * 1024, dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, base64.b64decode(digest))


_DUMMY_HASH: str | None = None


def _dummy_hash() -> str:
    """Checked for unknown names, so a wrong name costs as long as a wrong password."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_hex(8))
    return _DUMMY_HASH


def users_path(db: Path, *, override: bool = True) -> Path:
    """The accounts file for a warehouse: `$CEPING_USERS` (unless `override` is off, as for a
    backup's copy), else `<warehouse>.users.sqlite`."""
    beside = Path(db).with_name(Path(db).name + ".users.sqlite")
    return Path(os.environ.get(USERS_ENV) or beside) if override else beside


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """The accounts file. Each call opens its own short connection (threads, processes)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists()
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            if fresh:
                os.chmod(self.path, 0o600)
            con.executescript(SCHEMA)
            con.execute("begin immediate")
            yield con
            con.execute("commit")
        except BaseException:
            if con.in_transaction:
                con.execute("rollback")
            raise
        finally:
            con.close()

    def exists(self) -> bool:
        """Whether any account is set up (no file: the dashboard keeps its local mode)."""
        if not self.path.exists():
            return False
        with self._db() as con:
            return con.execute("select count(*) from users").fetchone()[0] > 0

    # -- administration ------------------------------------------------------------------------

    def add(self, name: str, password: str, role: str, city_code: str | None = None, *,
            by: str) -> Account:
        name = name.strip()
        if not name or len(name) > 40 or any(c in name for c in "\x1f\n\r\t"):
            raise AccountError("用户名须为 1–40 个字符。")
        if role not in ROLES:
            raise AccountError(f"角色须为：{'、'.join(ROLES)}。")
        if city_code and role != VIEWER:
            raise AccountError("只有查看者可以限定市州。")
        _check_password(password)
        stamp = time.time()
        with self._db() as con:
            if con.execute("select 1 from users where name = ?", [name]).fetchone():
                raise AccountError(f"用户 {name} 已存在。")
            con.execute("insert into users values (?, ?, ?, ?, 0, ?, ?)",
                        [name, role, city_code or None, hash_password(password), stamp, stamp])
            _event(con, by, "新建用户", name, f"{ROLES[role]}" + (f"，市州 {city_code}" if city_code else ""))
        return Account(name, role, city_code or None, False)

    def set_disabled(self, name: str, disabled: bool, *, by: str) -> None:
        with self._db() as con:
            self._require(con, name)
            con.execute("update users set disabled = ?, changed_at = ? where name = ?",
                        [int(disabled), time.time(), name])
            if disabled:
                _end_sessions(con, name)
            else:
                con.execute("delete from failures where name = ?", [name.lower()])
            _event(con, by, "停用用户" if disabled else "启用用户", name, None)

    def reset_password(self, name: str, password: str, *, by: str) -> None:
        """A new password; the user's open sessions end and a lockout is lifted."""
        _check_password(password)
        with self._db() as con:
            self._require(con, name)
            con.execute("update users set hash = ?, changed_at = ? where name = ?",
                        [hash_password(password), time.time(), name])
            _end_sessions(con, name)
            con.execute("delete from failures where name = ?", [name.lower()])
            _event(con, by, "重设密码", name, None)

    def list(self) -> list[Account]:
        if not self.path.exists():
            return []
        with self._db() as con:
            return [Account(n, r, c, bool(d)) for n, r, c, d in con.execute(
                "select name, role, city_code, disabled from users order by name")]

    def events(self) -> list[tuple[float, str, str, str | None, str | None]]:
        """Account changes and sign-ins, newest first: (at, by, action, user, detail)."""
        with self._db() as con:
            return con.execute("select at, by_user, action, name, detail from events "
                               "order by at desc, rowid desc").fetchall()

    def backup_to(self, out: Path) -> Path | None:
        """A consistent copy of the accounts file (SQLite's online backup), mode 600; None when
        there are no accounts yet."""
        if not self.path.exists():
            return None
        out = Path(out)
        if out.exists():
            raise AccountError(f"备份文件 {out} 已存在：不会覆盖已有文件。")
        source, target = sqlite3.connect(self.path), sqlite3.connect(out)
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
        os.chmod(out, 0o600)
        return out

    @staticmethod
    def _require(con: sqlite3.Connection, name: str) -> None:
        if not con.execute("select 1 from users where name = ?", [name]).fetchone():
            raise AccountError(f"没有用户 {name}。")

    # -- signing in and out --------------------------------------------------------------------

    def sign_in(self, name: str, password: str, client: str = "") -> str:
        """A new session token for a correct name and password, bound to `client` (a key of the
        browser, pipelines/present/access.py). The attempt is counted before the password is
        checked, so parallel sessions cannot slip extra guesses past the lockout."""
        name = name.strip()
        key, stamp = name.lower(), time.time()
        limit = _setting(MAX_FAILURES_ENV, 5)
        lock = _setting(LOCK_MINUTES_ENV, 15) * 60
        with self._db() as con:
            row = con.execute("select count, locked_until from failures where name = ?",
                              [key]).fetchone()
            if row and row[1] > stamp:
                raise AccountError(f"连续输错次数过多，账户已锁定，请 {_minutes(row[1] - stamp)} 分钟后再试"
                                   "或请管理员重设密码。")
            count = (row[0] if row and row[1] == 0 else 0) + 1
            con.execute("insert or replace into failures values (?, ?, ?)",
                        [key, count, stamp + lock if count >= limit else 0])
            user = con.execute("select hash, disabled from users where name = ?", [name]).fetchone()
        good = verify_password(password, user[0] if user else _dummy_hash()) and bool(user)
        with self._db() as con:
            if not good:
                _event(con, name or "—", "登录失败", name, None)
                raise AccountError("用户名或密码不正确。")
            if user[1]:
                raise AccountError("该账户已停用，请联系管理员。")
            con.execute("delete from failures where name = ?", [key])
            token = secrets.token_urlsafe(32)
            con.execute("insert into sessions values (?, ?, ?, ?, null, ?)",
                        [_sha(token), name, stamp, stamp, client])
            _event(con, name, "登录", name, None)
        return token

    def session(self, token: str, client: str = "") -> Account | None:
        """The account behind a live token (and mark it used), else None: the token was ended,
        sat idle too long, its user is disabled, or it is presented by another browser than the
        one that signed in (that browser's session stays open)."""
        if not token or not self.path.exists():
            return None
        idle = _setting(IDLE_MINUTES_ENV, 30) * 60
        stamp = time.time()
        with self._db() as con:
            row = con.execute(
                "select u.name, u.role, u.city_code, u.disabled, s.last_seen, s.ended_at, s.client "
                "from sessions s join users u on u.name = s.name where s.token_sha256 = ?",
                [_sha(token)]).fetchone()
            if row is None or row[5] is not None or row[3] or not hmac.compare_digest(row[6], client):
                return None
            if stamp - row[4] > idle:
                con.execute("update sessions set ended_at = ? where token_sha256 = ?", [stamp, _sha(token)])
                return None
            con.execute("update sessions set last_seen = ? where token_sha256 = ?", [stamp, _sha(token)])
        return Account(row[0], row[1], row[2], False)

    def sign_out(self, token: str) -> None:
        with self._db() as con:
            con.execute("update sessions set ended_at = ? where token_sha256 = ? and ended_at is null",
                        [time.time(), _sha(token)])


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"密码至少 {MIN_PASSWORD} 个字符。")


def _minutes(seconds: float) -> int:
    return max(1, int(seconds // 60) + 1)


def _end_sessions(con: sqlite3.Connection, name: str) -> None:
    con.execute("update sessions set ended_at = ? where name = ? and ended_at is null", [time.time(), name])


def _event(con: sqlite3.Connection, by: str, action: str, name: str | None, detail: str | None) -> None:
    con.execute("insert into events values (?, ?, ?, ?, ?)", [time.time(), by, action, name, detail])

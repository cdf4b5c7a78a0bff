"""Who may read and change what: viewers (optionally limited to one city), analysts (upload,
replace, roll back, record decisions) and administrators (analysts who also manage accounts).

Named accounts (pipelines/store/accounts.py, `python -m pipelines users`) take over once one
exists. Without them:

Local mode keeps one analyst password as a slow salted hash (PBKDF2-SHA256, 600,000 rounds) in
`.streamlit/secrets.toml` (never committed) or in `$CEPING_ANALYST_HASH`; `python -m pipelines
set-password` writes it. With OIDC configured (`[auth]` in secrets), `st.login` is used instead and
the analysts are the e-mail addresses listed under `[roles] analysts`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets as token
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from pipelines.store.accounts import ADMIN, ANALYST, ROLES, VIEWER, Accounts

ROUNDS = 600_000
SECRETS_FILE = Path(__file__).resolve().parents[2] / ".streamlit" / "secrets.toml"
HASH_ENV = "CEPING_ANALYST_HASH"


def hash_password(password: str, *, rounds: int = ROUNDS) -> str:
    salt = token.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, rounds)
    return "pbkdf2_sha256${}${}${}".format(rounds, base64.b64encode(salt).decode(),
                                           base64.b64encode(digest).decode())


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, rounds, salt, digest = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), base64.b64decode(salt),
                                     int(rounds))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def write_password_hash(password: str, path: Path = SECRETS_FILE) -> Path:
    """Store the analyst password hash in the secrets file (other sections are kept)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    kept, skipping = [], False
    for line in lines:
        if line.strip().startswith("["):
            skipping = line.strip() == "[local_auth]"
        if not skipping:
            kept.append(line)
    kept += ["[local_auth]", f'analyst_password_hash = "{hash_password(password)}"', ""]
    path.write_text("\n".join(kept), encoding="utf-8")
    os.chmod(path, 0o600)
    return path


# -- the role of a dashboard session ------------------------------------------------------------
# A session's role lives in server-side session state, but only as a grant signed with a key that
# exists in this server process alone: setting `role` in session state (or forging a grant) gives
# nothing; a grant never outlives the server that issued it. A named account's grant also carries
# its server-side token (pipelines/store/accounts.py), checked against the accounts file on every
# run: after sign-out, idle expiry or disabling, the same session id (or a replayed grant) is a
# visitor again, and a role or city changed by an administrator applies at the next click.

_SERVER_KEY = token.token_bytes(32)
CHANGES_DATA = (ANALYST, ADMIN)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
PUBLIC_READ_ENV = "CEPING_PUBLIC_READ"
REQUIRE_SIGN_IN_ENV = "CEPING_REQUIRE_SIGN_IN"


class Grant(NamedTuple):
    role: str          # viewer, analyst or admin
    user: str          # "" for a visitor who has not signed in
    city: str = ""     # a viewer limited to one city; "" = the whole province
    token: str = ""    # a named account's session token; "" for the local password or OIDC
    client: str = ""   # the key of the browser that signed in (client_key); "" when it has none

    @property
    def signed_in(self) -> bool:
        return bool(self.user)


NOBODY = Grant(VIEWER, "")


def _signature(*parts: str) -> str:
    return hmac.new(_SERVER_KEY, "\x1f".join(parts).encode("utf-8"), hashlib.sha256).hexdigest()


def issue_grant(role: str, user: str, city: str = "", session_token: str = "",
                client: str = "") -> str:
    """A grant for `role`, issued after the password, account or OIDC check succeeded, for the
    browser whose key is `client`."""
    parts = (role, user, city or "", session_token, client)
    return "\x1f".join((*parts, _signature(*parts)))


def granted(grant: object) -> Grant:
    """The grant's (role, user, city, token, client); a missing, forged or foreign grant is a
    visitor."""
    if not isinstance(grant, str) or grant.count("\x1f") != 5:
        return NOBODY
    *parts, signature = grant.split("\x1f")
    if parts[0] not in ROLES or not hmac.compare_digest(signature, _signature(*parts)):
        return NOBODY
    return Grant(*parts)


XSRF_COOKIE = "_streamlit_xsrf"


def client_key(cookies: Mapping[str, str]) -> str:
    """A key of the browser this run comes from: a digest of the token in Streamlit's XSRF
    cookie (kept for the browser's lifetime; re-masked on each response, so unmasked here). A
    client that presents a stolen Streamlit session id from another browser has another key.
    "" when the cookie is absent (XSRF off, AppTest)."""
    value = str(cookies.get(XSRF_COOKIE, "") or "").strip("\"'")
    try:
        version, mask, masked, _ = value.split("|")
        mask_bytes, masked_bytes = bytes.fromhex(mask), bytes.fromhex(masked)
    except ValueError:
        return ""
    if version != "2" or not mask_bytes:
        return ""
    raw = bytes(b ^ mask_bytes[i % len(mask_bytes)] for i, b in enumerate(masked_bytes))
    return hashlib.sha256(raw).hexdigest()[:32]


def current_grant(grant: object, accounts: Accounts | None,
                  client: str = "") -> tuple[Grant, str | None]:
    """The grant in force for this run and, when it changed, the signed value to store (None =
    unchanged): a grant counts only from the browser that signed in (any sign-in mode), and a
    token is looked up in the accounts file, whose role and city win."""
    found = granted(grant)
    if found.signed_in and not hmac.compare_digest(found.client, client):
        return NOBODY, ""
    if not found.token:
        return found, None
    account = accounts.session(found.token, client) if accounts is not None else None
    if account is None:
        return NOBODY, ""
    fresh = Grant(account.role, account.name, account.city_code or "", found.token, client)
    return fresh, (None if fresh == found else issue_grant(*fresh))


def can_change_data(grant: Grant) -> bool:
    return grant.role in CHANGES_DATA


def is_admin(grant: Grant) -> bool:
    return grant.role == ADMIN


def visible_city(grant: Grant, requested: str | None) -> str | None:
    """The city a page may show: a city-limited viewer gets the province (the ranking) or their
    own city, whatever the sidebar, URL or session state asked for."""
    if not grant.city or requested in (None, "", grant.city):
        return requested or None
    return grant.city


def county_visible(grant: Grant, county_city: str | None) -> bool:
    """Whether a county's own pages (画像, 摘帽 details, exports) are open to this grant."""
    return not grant.city or county_city == grant.city


def sign_in_required(address: str | None, environ: Mapping[str, str] = os.environ) -> bool:
    """Reading needs a signed-in account when the server listens beyond this machine (or
    `$CEPING_REQUIRE_SIGN_IN=1`), unless public read is asked for (`$CEPING_PUBLIC_READ=1`)."""
    if environ.get(PUBLIC_READ_ENV) == "1":
        return False
    return environ.get(REQUIRE_SIGN_IN_ENV) == "1" or (address or "127.0.0.1") not in LOOPBACK

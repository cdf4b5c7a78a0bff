"""Who may change data: analysts (upload, replace, roll back, record decisions) and viewers.

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
from pathlib import Path

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
# nothing; a grant never outlives the server that issued it.

_SERVER_KEY = token.token_bytes(32)
VIEWER = "viewer"
ANALYST = "analyst"


def _signature(role: str, user: str) -> str:
    return hmac.new(_SERVER_KEY, f"{role}\x1f{user}".encode("utf-8"), hashlib.sha256).hexdigest()


def issue_grant(role: str, user: str) -> str:
    """A grant for `role`, issued after the password or OIDC check succeeded."""
    return f"{role}\x1f{user}\x1f{_signature(role, user)}"


def granted(grant: object) -> tuple[str, str]:
    """(role, user) of a valid grant; a missing, forged or foreign grant is a viewer."""
    if not isinstance(grant, str) or grant.count("\x1f") != 2:
        return VIEWER, ""
    role, user, signature = grant.split("\x1f")
    if role not in (VIEWER, ANALYST) or not hmac.compare_digest(signature, _signature(role, user)):
        return VIEWER, ""
    return role, user

"""Keep credentials out of what fwyy prints, logs and writes.

OLLAMA_HOST may carry a user and password (``https://user:secret@ollama.example``, for a daemon
behind a reverse proxy). Error messages, `--json` output and `fwyy doctor` name the daemon so a
user can see where fwyy looked; they must show the host, never the secret, because that output
ends up in CI logs and bug reports.
"""

from __future__ import annotations

import re

# scheme://user[:password]@ or a bare user[:password]@host (OLLAMA_HOST may omit the scheme)
_USERINFO = re.compile(
    r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)?(?P<userinfo>[^\s/@:]+(?::[^\s/@]*)?)@(?=[^\s/@]+)"
)
_QUERY_SECRET = re.compile(r"(?i)([?&](?:token|key|api_key|apikey|password|secret|access_token)=)[^&\s#]+")


def redact_url(text: str) -> str:
    """`text` with any URL user info replaced by ``***`` and secret-looking query values masked."""
    if not text:
        return text
    masked = _USERINFO.sub(lambda m: f"{m.group('scheme') or ''}***@", text)
    return _QUERY_SECRET.sub(r"\1***", masked)

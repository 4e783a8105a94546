"""Schemathesis hooks for the stepup reference server: credentials for every generated call.

Every call gets a fresh user and a fresh session of theirs, minted through the admin API together with an
elevated token for every scope, bound to that session. So the fuzzer gets past the auth layer and the guard,
and no call can starve the rest of the run: a `/revoke`, a spent single-use token, a lockout, a used-up
per-user limit or a deleted device only touches the user, session and token of that one call. Admin-API calls
get the admin token.

Configuration (set by `tests/server/schemathesis.rs`): STEPUP_BASE_URL, STEPUP_ADMIN_TOKEN,
STEPUP_ENVIRONMENT.
"""

import os
import uuid

import requests
import schemathesis

BASE = os.environ["STEPUP_BASE_URL"]
ADMIN = os.environ["STEPUP_ADMIN_TOKEN"]
ENVIRONMENT = os.environ.get("STEPUP_ENVIRONMENT", "dev")
ELEVATED_HEADER = "x-dyn-elevated-access-token"


def _admin(path, body):
    response = requests.post(
        f"{BASE}/admin/environments/{ENVIRONMENT}{path}",
        json=body,
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


def _fresh_user():
    tag = uuid.uuid4().hex
    phone = str(int(tag[:12], 16) % 10**10).rjust(10, "5")
    return _admin("/users", {"email": f"fuzz-{tag}@example.com", "phoneNumber": phone})["id"]


def _all_scopes():
    settings = requests.get(f"{BASE}/sdk/{ENVIRONMENT}/settings", timeout=10).json()
    return settings["security"]["stepUp"]["scopes"]


_scopes = None


@schemathesis.auth(refresh_interval=None)
class FreshSessionPerCall:
    def get(self, case, context):
        global _scopes
        if case.path.startswith("/admin"):
            return {"admin": ADMIN}
        if _scopes is None:
            _scopes = _all_scopes()
        minted = _admin(f"/users/{_fresh_user()}/sessions", {"elevatedScopes": _scopes})
        return {"session": minted["jwt"], "elevated": minted["elevatedAccessToken"]}

    def set(self, case, data, context):
        case.headers = case.headers or {}
        if "admin" in data:
            case.headers["Authorization"] = f"Bearer {data['admin']}"
        else:
            case.headers["Authorization"] = f"Bearer {data['session']}"
            case.headers[ELEVATED_HEADER] = data["elevated"]

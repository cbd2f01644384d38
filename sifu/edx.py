"""The two edX calls Sifu makes: exchange an authorization code, then read who it belongs to."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from sifu.config import Settings

if TYPE_CHECKING:
    import httpx


class EdxError(Exception):
    """edX refused or failed; `status` is what Sifu answers (4xx: the caller's fault, 502: edX's)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class EdxClient:
    def __init__(self, settings: Settings, client: httpx.Client | None = None):
        self.settings = settings
        # Made at the first sign-in, not at start-up: importing httpx and building its TLS context cost
        # about 0.1 s in every worker, and only /token talks to edX.
        self._http = client
        self._lock = threading.Lock()

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            with self._lock:  # sign-ins run in the thread pool: make exactly one client
                if self._http is None:
                    import httpx

                    self._http = httpx.Client(
                        base_url=self.settings.edx_base_url,
                        timeout=httpx.Timeout(self.settings.edx_timeout, connect=5.0),
                        follow_redirects=False,
                    )
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        import httpx

        try:
            return self.http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise EdxError(502, "edx_timeout", f"edX at {self.settings.edx_hostname} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise EdxError(502, "edx_unreachable", f"edX at {self.settings.edx_hostname} is unreachable: {type(exc).__name__}") from None

    def exchange_code(self, code: str) -> str:
        """POST /oauth2/access_token (authorization_code grant); returns the edX access token."""
        s = self.settings
        response = self._call("POST", "/oauth2/access_token", data={
            "grant_type": "authorization_code", "code": code, "client_id": s.edx_client_id,
            "client_secret": s.edx_client_secret, "redirect_uri": s.edx_redirect_uri,
        })
        if response.status_code == 401:  # invalid_client: our credentials, not the caller's code
            raise EdxError(502, "edx_client_rejected", "edX refused Sifu's OAuth2 client credentials; "
                           "check EDX_OAUTH2_CLIENT_ID and EDX_OAUTH2_CLIENT_SECRET")
        if response.status_code in (400, 403):
            raise EdxError(401, "edx_code_rejected", "edX rejected the authorization code (expired, used, or for another client)")
        return _string_field(response, "access_token", "the token exchange", "edX's token reply")

    def username(self, access_token: str) -> str:
        """GET /api/user/v1/me with the edX token; returns its username."""
        response = self._call("GET", "/api/user/v1/me", headers={"Authorization": f"Bearer {access_token}"})
        if response.status_code in (401, 403):
            raise EdxError(401, "edx_token_rejected", "edX refused the access token it just issued")
        return _string_field(response, "username", "/api/user/v1/me", "edX's /api/user/v1/me reply")


def _string_field(response: httpx.Response, field: str, call: str, reply: str) -> str:
    """The non-empty string ``field`` of a 200 JSON reply; anything else is edX's fault (502)."""
    if response.status_code != 200:
        raise EdxError(502, "edx_error", f"edX answered {response.status_code} to {call}")
    try:
        value = response.json()[field]
    except (ValueError, KeyError, TypeError):
        value = None
    if not isinstance(value, str) or not value:
        raise EdxError(502, "edx_bad_reply", f"{reply} has no {field}")
    return value

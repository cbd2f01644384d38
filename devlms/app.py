"""devlms routes: /oauth2/authorize, /oauth2/access_token, /api/user/v1/me, and a course page."""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlencode

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

# Demo users: username -> password. "instructor" is meant to be listed in SIFU_STAFF_USERNAMES.
DEMO_USERS = {"alice": "alice-pass", "bob": "bob-pass", "instructor": "instructor-pass"}
CODE_TTL = 120
TOKEN_TTL = 3600
SESSION_COOKIE = "devlms_session"


def demo_notebook(title: str) -> str:
    """A small notebook the course page uses as its base notebook."""
    return json.dumps({
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": [f"# {title}\n", "Served by Sifu from devlms."]},
            {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": ["6*7"]},
        ],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5,
    })


@dataclass
class DevLmsConfig:
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    sifu_url: str  # how devlms (server side) reaches Sifu
    sifu_public_url: str  # what the browser's iframe uses
    students: int = 0  # extra users student-1..student-N (password "<name>-pass"), for load tests


def load_test_users(count: int) -> dict[str, str]:
    """student-1 .. student-N with password "<name>-pass": many distinct learners for load tests."""
    return {f"student-{n}": f"student-{n}-pass" for n in range(1, count + 1)}


class Store:
    """In-memory codes, tokens and sessions (devlms runs as one process)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.codes: dict[str, tuple[str, str, str, float]] = {}  # code -> user, client, redirect, expiry
        self.tokens: dict[str, tuple[str, float]] = {}
        self.sessions: dict[str, str] = {}

    def issue_code(self, username: str, client_id: str, redirect_uri: str) -> str:
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = (username, client_id, redirect_uri, time.time() + CODE_TTL)
        return code

    def redeem(self, code: str, client_id: str, redirect_uri: str) -> str | None:
        with self.lock:
            entry = self.codes.pop(code, None)  # single use
        if not entry or entry[1] != client_id or entry[2] != redirect_uri or entry[3] < time.time():
            return None
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = (entry[0], time.time() + TOKEN_TTL)
        return token

    def user_for_token(self, token: str) -> str | None:
        with self.lock:
            entry = self.tokens.get(token)
        return entry[0] if entry and entry[1] > time.time() else None


async def _form(request: Request) -> dict[str, str]:
    """URL-encoded form fields (parsed here: devlms needs no multipart support)."""
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
                        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")


def _login_form(action: str, hidden: dict[str, str], error: str = "") -> str:
    fields = "".join(f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'>" for k, v in hidden.items())
    users = ", ".join(f"{u} / {p}" for u, p in DEMO_USERS.items())
    note = f"<p role='alert'>{html.escape(error)}</p>" if error else ""
    return (f"{note}<form method='post' action='{html.escape(action)}'>{fields}"
            "<label>Username <input name='username' autocomplete='username'></label> "
            "<label>Password <input name='password' type='password'></label> "
            f"<button type='submit'>Sign in</button></form><p>Demo users: {html.escape(users)}</p>")


def create_app(config: DevLmsConfig) -> FastAPI:
    app = FastAPI(title="devlms (development only)")
    store = Store()
    app.state.store = store

    def session_user(request: Request) -> str | None:
        return store.sessions.get(request.cookies.get(SESSION_COOKIE, ""))

    users = {**DEMO_USERS, **load_test_users(config.students)}

    def check_password(username: str, password: str) -> bool:
        expected = users.get(username)
        return expected is not None and secrets.compare_digest(expected, password)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "mode": "development"}

    # --- OAuth2 provider (the edX endpoints Sifu uses) ---------------------------------------------

    @app.get("/oauth2/authorize")
    def authorize_form(client_id: str = "", redirect_uri: str = "", state: str = "", response_type: str = "code"):
        if client_id != config.client_id or redirect_uri != config.redirect_uri or response_type != "code":
            return JSONResponse({"error": "invalid_request", "error_description": "unknown client or redirect_uri"}, 400)
        return _page("Sign in to devlms", _login_form("/oauth2/authorize", {
            "client_id": client_id, "redirect_uri": redirect_uri, "state": state}))

    @app.post("/oauth2/authorize")
    async def authorize(request: Request):
        form = await _form(request)
        username, password = form.get("username", ""), form.get("password", "")
        client_id, redirect_uri, state = form.get("client_id", ""), form.get("redirect_uri", ""), form.get("state", "")
        if client_id != config.client_id or redirect_uri != config.redirect_uri:
            return JSONResponse({"error": "invalid_request", "error_description": "unknown client or redirect_uri"}, 400)
        if not check_password(username, password):
            return _page("Sign in to devlms", _login_form("/oauth2/authorize", {
                "client_id": client_id, "redirect_uri": redirect_uri, "state": state}, "Wrong username or password."))
        code = store.issue_code(username, client_id, redirect_uri)
        query = urlencode({"code": code, **({"state": state} if state else {})})
        return RedirectResponse(f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}", status_code=302)

    @app.post("/oauth2/access_token")
    async def access_token(request: Request):
        form = await _form(request)
        grant_type, code, client_id = form.get("grant_type", ""), form.get("code", ""), form.get("client_id", "")
        client_secret, redirect_uri = form.get("client_secret", ""), form.get("redirect_uri", "")
        if client_id != config.client_id or not secrets.compare_digest(client_secret, config.client_secret):
            return JSONResponse({"error": "invalid_client"}, 401)
        if grant_type != "authorization_code":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        token = store.redeem(code, client_id, redirect_uri)
        if token is None:
            return JSONResponse({"error": "invalid_grant"}, 400)
        return {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_TTL, "scope": "read write"}

    @app.get("/api/user/v1/me")
    def me(request: Request):
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        username = store.user_for_token(token.strip()) if scheme.lower() == "bearer" else None
        if username is None:
            return JSONResponse({"detail": "Authentication credentials were not provided."}, 401)
        return {"username": username}

    # --- the course page (what the XBlock does, server side) ---------------------------------------

    @app.post("/login")
    async def login(request: Request):
        form = await _form(request)
        username, password, next = form.get("username", ""), form.get("password", ""), form.get("next", "/")
        if not next.startswith("/") or next.startswith("//"):
            next = "/"
        if not check_password(username, password):
            return _page("Sign in to devlms", _login_form("/login", {"next": next}, "Wrong username or password."))
        session = secrets.token_urlsafe(24)
        store.sessions[session] = username
        response = RedirectResponse(next, status_code=303)
        response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="lax")
        return response

    @app.get("/xblock/callback")
    def callback(code: str = "") -> JSONResponse:
        # The registered redirect URI; the course page obtains codes itself, so this only shows the code.
        return JSONResponse({"code": code})

    @app.get("/courses/{course}/notebooks/{file}")
    async def course_page(request: Request, course: str, file: str):
        # async: the flow waits on Sifu, which calls back into devlms (/oauth2/...); handlers held in a
        # thread pool would exhaust it under load (50 students at once) and deadlock into timeouts.
        username = session_user(request)
        if username is None:
            return _page("Sign in to devlms", _login_form("/login", {"next": request.url.path}))
        # As the XBlock does: an auth code for this user, /token, base exists or create, copy exists or create.
        code = store.issue_code(username, config.client_id, config.redirect_uri)
        steps: list[str] = []
        try:
            async with httpx.AsyncClient(base_url=config.sifu_url, timeout=30) as sifu:
                reply = await sifu.post("/token", headers={"Authorization": "Bearer None"}, json={
                    "username": username, "auth_code": code, "grant_type": "edx_auth_code", "path": "create"})
                steps.append(f"POST /token → {reply.status_code}")
                reply.raise_for_status()
                token = reply.json()["access_token"]
                auth = {"Authorization": f"Bearer {token}"}
                base = {"notey_notey": {"course": course, "file": file}}
                exists = await sifu.request("GET", "/v1/api/notebooks/courses/files/", headers=auth, json=base)
                steps.append(f"GET base → {exists.status_code} {exists.text}")
                if not exists.json().get("result"):
                    created = await sifu.post("/v1/api/notebooks/courses/files/", headers=auth, json={
                        "notey_notey": {**base["notey_notey"], "data": demo_notebook(f"{course} / {file}")}})
                    steps.append(f"POST base → {created.status_code} {created.text}")
                mine = {"notey_notey": {"username": username, "course": course, "file": file}}
                exists = await sifu.request("GET", "/v1/api/notebooks/users/courses/files", headers=auth, json=mine)
                steps.append(f"GET copy → {exists.status_code} {exists.text}")
                if not exists.json().get("result"):
                    created = await sifu.post("/v1/api/notebooks/users/courses/files/", headers=auth, json=mine)
                    steps.append(f"POST copy → {created.status_code} {created.text}")
                    created.raise_for_status()
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            log = "".join(f"<li>{html.escape(s)}</li>" for s in steps)
            return _page("Notebook unavailable", f"<p>Sifu failed: {html.escape(type(exc).__name__)}</p><ul>{log}</ul>")
        serve = (f"{config.sifu_public_url}/v1/api/notebooks/users/{quote(username, safe='')}/courses/"
                 f"{quote(course, safe='')}/files/{quote(file, safe='')}?Authorization={quote('Bearer ' + token)}")
        log = "".join(f"<li>{html.escape(s)}</li>" for s in steps)
        return _page(f"{course}: {file}", f"<p>Signed in as <b>{html.escape(username)}</b>.</p>"
                     f"<iframe id='notebook' title='notebook' src='{html.escape(serve)}' width='100%' height='700'></iframe>"
                     f"<details><summary>XBlock flow</summary><ul>{log}</ul></details>")

    return app

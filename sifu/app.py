"""Sifu's HTTP API: the contract the deployed XBlock calls (DESIGN.md §4), served by FastAPI."""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from sifu import config as config_module
from sifu import names, signing, storage
from sifu.db import TokenInfo, TokenStore, UidStore, create_schema, hash_token, make_engine
from sifu.edx import EdxClient, EdxError

log = logging.getLogger("sifu")

MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024


class ApiError(Exception):
    """Answered as {"result": false, "error": code, "detail": message} with `status`."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers


def error_body(code: str, detail: str) -> dict[str, Any]:
    return {"result": False, "error": code, "detail": detail}


# --- documented request and reply shapes (the XBlock's, unchanged) ---------------------------------


class TokenRequest(BaseModel):
    username: str
    auth_code: str
    grant_type: str = Field("edx_auth_code", description='Always "edx_auth_code".')
    path: str | None = Field(None, description='The XBlock sends "create"; ignored.')


class TokenReply(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int


class RevokeRequest(BaseModel):
    token: str
    token_type_hint: str | None = "access_token"


def _name(kind: str) -> Any:
    return Field(pattern=names.json_schema_pattern(kind), min_length=1, max_length=names.MAX_NAME_LENGTH,
                 examples=[names.EXAMPLES[kind]])


class BaseNotebook(BaseModel):
    course: str = _name("course")
    file: str = _name("file")
    data: str | None = Field(None, description="The .ipynb JSON text (create only).")


class BaseNotebookRequest(BaseModel):
    notey_notey: BaseNotebook


class UserNotebook(BaseModel):
    username: str = _name("username")
    course: str = _name("course")
    file: str = _name("file")


class UserNotebookRequest(BaseModel):
    notey_notey: UserNotebook


class Result(BaseModel):
    result: bool


class ErrorReply(BaseModel):
    result: bool = False
    error: str
    detail: str


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON schema with its $defs inlined, so it stands alone inside an operation."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.split("/")[-1]])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)


def _body_doc(model: type[BaseModel], required: bool) -> dict[str, Any]:
    schema = _inline(model.model_json_schema())
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}}


_ERRORS = {status: {"model": ErrorReply} for status in (400, 401, 403, 404, 502, 503)}


# --- the application ---------------------------------------------------------------------------------


class SecurityHeaders:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware on the hot serve path): no caching, the
    frame-ancestors policy, and no Referer (serve URLs carry the token)."""

    def __init__(self, app: Any, frame_policy: str):
        self.app = app
        self.extra = [(b"cache-control", b"no-store"), (b"content-security-policy", frame_policy.encode()),
                      (b"referrer-policy", b"no-referrer")]

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Sifu:
    """Everything a request needs, built once per worker."""

    def __init__(self, settings: config_module.Settings):
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self.tokens = TokenStore(self.engine)
        self.uids = UidStore(self.engine)
        self.local_database = settings.database_url.startswith("sqlite")
        self.edx = EdxClient(settings)

    def close(self) -> None:
        self.edx.close()
        self.tokens.close()
        self.engine.dispose()


# SIFU_SERVICE_TOKEN's identity: ':' is not allowed in edX usernames, so no student can be it.
SERVICE_USERNAME = "sifu:service"


def bearer_from(request: Request) -> str | None:
    """The token from `Authorization: Bearer T`, or from `?Authorization=Bearer%20T` (the iframe URL)."""
    raw = request.headers.get("authorization") or request.query_params.get("Authorization") or ""
    scheme, _, token = raw.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or token == "None" or len(token) > 256:
        return None
    return token


async def authenticate(sifu: Sifu, request: Request) -> TokenInfo:
    return await authenticate_token(sifu, bearer_from(request))


async def authenticate_token(sifu: Sifu, token: str | None) -> TokenInfo:
    """The token's user, or 401 (no token, an unknown, expired or revoked one)."""
    service = sifu.settings.service_token
    if not token:
        info = None
    elif service and hmac.compare_digest(token.encode(), service.encode()):
        info = TokenInfo(SERVICE_USERNAME, 0)  # staff; never expires (rotated by a new deploy secret)
    elif sifu.local_database:
        info = sifu.tokens.lookup(token)  # a local SQLite read takes microseconds: cheaper than a thread hop
    else:
        info = await run_in_threadpool(sifu.tokens.lookup, token)
    if info is None:
        raise ApiError(401, "invalid_token", "a valid Sifu access token is required (Authorization: Bearer T); "
                       "it may have expired or been revoked: get a new one from /token",
                       {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return info


async def notey(request: Request, fields: tuple[str, ...]) -> dict[str, Any]:
    """The `notey_notey` object from a JSON body (GET included, as the XBlock sends it) or query parameters."""
    raw = await request.body()
    params: dict[str, Any] = {}
    if raw.strip():
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "invalid_json", "the request body is not valid JSON") from None
        inner = body.get("notey_notey") if isinstance(body, dict) else None
        if not isinstance(inner, dict):
            raise ApiError(400, "invalid_request", 'the JSON body needs a "notey_notey" object')
        params = inner
    else:
        params = {k: v for k, v in request.query_params.items() if k in fields}
    for name in fields:
        if name == "data":
            continue
        value = params.get(name)
        if not isinstance(value, str):
            raise ApiError(400, "invalid_request", f'"{name}" is required and must be a string')
        try:
            names.check_name(name, value)
        except names.InvalidName as exc:
            raise ApiError(400, "invalid_name", str(exc)) from None
    return params


def check_name_or_400(kind: str, value: str) -> str:
    try:
        return names.check_name(kind, value)
    except names.InvalidName as exc:
        raise ApiError(400, "invalid_name", str(exc)) from None


def add_notebook_routes(app: FastAPI, paths: tuple[str, ...], body: type[BaseModel], tag: str,
                        routes: list[tuple[Any, str, str, bool]]) -> None:
    """Register each (handler, method, summary, body required) at every spelling of a notebook URL.

    The XBlock calls these URLs both with and without the trailing slash; only the first spelling
    appears in the OpenAPI schema.
    """
    for index, path in enumerate(paths):
        for handler, method, summary, body_required in routes:
            app.add_api_route(path, handler, methods=[method], response_model=Result, responses=_ERRORS,
                              include_in_schema=index == 0, tags=[tag], summary=summary,
                              openapi_extra=_body_doc(body, body_required))


def create_app(settings: config_module.Settings | None = None) -> FastAPI:
    settings = settings or config_module.load()
    sifu = Sifu(settings)
    create_schema(sifu.engine)

    def is_staff(info: TokenInfo) -> bool:
        return info.username in settings.staff_usernames or info.username == SERVICE_USERNAME

    def require_owner_or_staff(info: TokenInfo, username: str) -> None:
        if info.username != username and not is_staff(info):
            raise ApiError(403, "forbidden", "this token may act only on its own user's notebooks")

    def require_volume() -> None:
        try:
            storage.check_volume(settings.notebook_root, settings.volume_id)
        except storage.VolumeUnavailable as exc:
            raise ApiError(503, "volume_unavailable", f"refusing to write: {exc}") from None

    frame_policy = "frame-ancestors " + " ".join(["'self'", *settings.frame_ancestors])

    app = FastAPI(
        title="Sifu",
        version="2.0.0",
        description="Signs students in through edX OAuth2 and manages their copies of course notebooks.",
        redirect_slashes=False,
    )
    app.state.sifu = sifu

    @app.on_event("shutdown")
    def _close() -> None:
        sifu.close()

    app.add_middleware(SecurityHeaders, frame_policy=frame_policy)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError):
        return JSONResponse(error_body(exc.code, exc.detail), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(storage.PlantedLink)
    async def _planted_link(_request: Request, exc: storage.PlantedLink):
        detail = (f"{exc.strerror}: Sifu does not write or delete through links in a student's folder; "
                  "remove the link (or rename it) and try again")
        return JSONResponse(error_body("planted_link", detail), status_code=409)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError):
        where = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()[:5])
        return JSONResponse(error_body("invalid_request", where or "the request is invalid"), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception):
        log.exception("unexpected error")
        return JSONResponse(error_body("internal_error", "Sifu failed unexpectedly; see its log"), status_code=500)

    # --- health ----------------------------------------------------------------------------------

    @app.get("/health", tags=["operations"], summary="Liveness for load balancers")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    # --- serve ------------------------------------------------------------------------------------------

    # Registered right after /health: Starlette tries the routes in order, and this is the most frequent request.
    # The hot path: parameters are read from the request directly (FastAPI's per-parameter validation
    # costs more than the rest of the handler) and documented through openapi_extra.
    serve_parameters = [
        *({"name": kind, "in": "path", "required": True, "schema": {"type": "string"}, "example": names.EXAMPLES[kind]}
          for kind in ("username", "course", "file")),
        {"name": "Authorization", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "Bearer T, when the header cannot be set (the XBlock's iframe URL)"},
    ]

    serve_path = "/v1/api/notebooks/users/{username}/courses/{course}/files/{file}"

    async def serve(request: Request) -> Response:
        username, course, file = (request.path_params[k] for k in ("username", "course", "file"))
        token = bearer_from(request)
        info = await authenticate_token(sifu, token)
        try:  # checks username, then course, then file
            relative = names.jupyter_relative_path(username, course, file)
        except names.InvalidName as exc:
            raise ApiError(400, "invalid_name", str(exc)) from None
        if info.username != username:
            raise ApiError(403, "forbidden", "this token may open only its own user's notebooks")
        if not storage.is_file_below(settings.notebook_root, relative):
            raise ApiError(404, "not_found", "there is no such copy; create it first")
        expires = info.expires_at
        session = hash_token(token)
        cookie = identity_cookie(signing.sign_identity(settings.secret_key, username, expires, session),
                                 max(0, int(expires - time.time())), settings.cookie_secure)
        location = f"{settings.jupyter_url}/notebooks/{quote(relative, safe='/')}"
        return Response(status_code=302, headers={"Location": location, "Set-Cookie": cookie})

    # Served by a plain Starlette route (the app's exception handlers and middleware still apply): FastAPI's
    # dependency solving and endpoint wrapper cost as much CPU as serve's own work. HEAD stays refused (405), as
    # on the FastAPI route. The FastAPI route below, never reached for GET, documents it in the OpenAPI schema.
    serving = Route(serve_path, serve, methods=["GET"], include_in_schema=False)
    serving.methods.discard("HEAD")  # Starlette adds HEAD to a GET route
    app.router.routes.append(serving)
    app.get(serve_path, tags=["students' copies"], status_code=302,
            responses={302: {"description": "To the notebook in Jupyter, with the identity cookie"}, **_ERRORS},
            summary="Open the student's copy in Jupyter (the XBlock's iframe URL)",
            openapi_extra={"parameters": serve_parameters})(serve)

    # Jupyter's revocation check (sifu.jupyter.SessionCheck): whose is the token behind an identity cookie, and
    # is it still active? Jupyter holds no database credentials; it asks here. The answer names only the user
    # the cookie already names, and only to someone who holds the token's hash.
    @app.get("/internal/identity-sessions/{token_hash}", include_in_schema=False)
    def identity_session(token_hash: str) -> Response:
        info = sifu.tokens.lookup_hash(token_hash) if _TOKEN_HASH.fullmatch(token_hash) else None
        if info is None:
            return JSONResponse(error_body("not_found", "no such active session"), status_code=404)
        return JSONResponse({"username": info.username, "expires_at": info.expires_at})

    # The kernel broker (sifu/kernel_broker.py, root) asks here which uid a student's kernels run as. It reads
    # only: uids are allocated at sign-in and first copy, so nothing on loopback can grow the table.
    @app.get("/internal/student-uids/{username}", include_in_schema=False)
    def student_uid(username: str) -> Response:
        try:
            uid = sifu.uids.uid_of(names.check_name("username", username))
        except names.InvalidName:
            uid = None
        if uid is None:
            return JSONResponse(error_body("not_found", "no uid allocated for this student"), status_code=404)
        return JSONResponse({"username": username, "uid": uid})

    # --- sign-in ------------------------------------------------------------------------------------

    @app.post("/token", response_model=TokenReply, responses=_ERRORS, tags=["auth"],
              summary="Exchange an edX authorization code for a Sifu access token")
    async def token(body: TokenRequest) -> TokenReply:
        if body.grant_type != "edx_auth_code":
            raise ApiError(400, "unsupported_grant_type", 'grant_type must be "edx_auth_code"')
        username = check_name_or_400("username", body.username)
        if not body.auth_code or len(body.auth_code) > 512:
            raise ApiError(400, "invalid_request", "auth_code must be 1 to 512 characters")
        try:
            edx_token = await run_in_threadpool(sifu.edx.exchange_code, body.auth_code)
            edx_username = await run_in_threadpool(sifu.edx.username, edx_token)
        except EdxError as exc:
            raise ApiError(exc.status, exc.code, exc.message) from None
        if edx_username != username:
            raise ApiError(403, "username_mismatch", "the authorization code belongs to a different edX user")
        await run_in_threadpool(sifu.uids.allocate, username)  # the uid their kernels run as (never reused)
        value, ttl = await run_in_threadpool(sifu.tokens.issue, username, settings.token_ttl)
        return TokenReply(access_token=value, token_type="Bearer", expires_in=ttl)

    @app.post("/revoke", response_model=Result, responses=_ERRORS, tags=["auth"], summary="Revoke a Sifu access token")
    async def revoke(body: RevokeRequest) -> Result:
        # RFC 7009: an unknown token is not an error; afterwards the token is refused everywhere.
        if 0 < len(body.token) <= 256:
            await run_in_threadpool(sifu.tokens.revoke, body.token)
        return Result(result=True)

    # --- base notebooks ---------------------------------------------------------------------------------

    base_paths = ("/v1/api/notebooks/courses/files/", "/v1/api/notebooks/courses/files")

    async def base_exists(request: Request, course: str | None = Query(None), file: str | None = Query(None)) -> Result:
        await authenticate(sifu, request)
        params = await notey(request, ("course", "file"))
        path = names.base_path(settings.notebook_root, params["course"], params["file"])
        return Result(result=storage.is_file(path, settings.notebook_root))

    async def base_create(request: Request) -> Result:
        info = await authenticate(sifu, request)
        params = await notey(request, ("course", "file"))
        data = params.get("data")
        if not isinstance(data, str):
            raise ApiError(400, "invalid_request", '"data" (the notebook\'s JSON text) is required')
        encoded = data.encode()
        if len(encoded) > MAX_NOTEBOOK_BYTES:
            raise ApiError(400, "too_large", f"the notebook is larger than {MAX_NOTEBOOK_BYTES} bytes")
        try:
            if not isinstance(json.loads(data), dict):
                raise ValueError
        except ValueError:
            raise ApiError(400, "invalid_notebook", '"data" must be the notebook\'s JSON text (an object)') from None
        require_volume()
        path = names.base_path(settings.notebook_root, params["course"], params["file"])
        if is_staff(info):
            await run_in_threadpool(storage.write_atomic, path, encoded, storage.COURSE, settings.notebook_root)
            return Result(result=True)
        if await run_in_threadpool(storage.create_exclusive, path, encoded, storage.COURSE, settings.notebook_root):
            return Result(result=True)
        if storage.read_bytes(path, settings.notebook_root) == encoded:
            return Result(result=True)  # the same notebook again (two students racing): nothing to change
        raise ApiError(403, "staff_required", "this base notebook exists; only staff may replace it")

    async def base_destroy(request: Request, course: str | None = Query(None), file: str | None = Query(None)) -> Result:
        info = await authenticate(sifu, request)
        params = await notey(request, ("course", "file"))
        if not is_staff(info):
            raise ApiError(403, "staff_required", "only staff may delete a base notebook")
        require_volume()
        path = names.base_path(settings.notebook_root, params["course"], params["file"])
        if not await run_in_threadpool(storage.remove, path, settings.notebook_root):
            raise ApiError(404, "not_found", "there is no such base notebook")
        return Result(result=True)

    # --- students' copies ----------------------------------------------------------------------------

    user_paths = ("/v1/api/notebooks/users/courses/files", "/v1/api/notebooks/users/courses/files/")

    async def user_exists(request: Request, username: str | None = Query(None), course: str | None = Query(None),
                          file: str | None = Query(None)) -> Result:
        info = await authenticate(sifu, request)
        params = await notey(request, ("username", "course", "file"))
        require_owner_or_staff(info, params["username"])
        path = names.user_path(settings.notebook_root, params["username"], params["course"], params["file"])
        return Result(result=storage.is_file(path, settings.notebook_root))

    async def user_create(request: Request) -> JSONResponse | Result:
        info = await authenticate(sifu, request)
        params = await notey(request, ("username", "course", "file"))
        require_owner_or_staff(info, params["username"])
        require_volume()
        root = settings.notebook_root
        target = names.user_path(root, params["username"], params["course"], params["file"])
        if storage.is_file(target, root):
            return Result(result=True)  # the student's work: keep it
        base = storage.read_bytes(names.base_path(root, params["course"], params["file"]), root)
        if base is None:
            return JSONResponse(error_body("base_missing", "the course has no such base notebook"), status_code=404)
        await run_in_threadpool(sifu.uids.allocate, params["username"])
        # Every folder below the notebook root is reached without following symlinks (a student's kernel owns
        # their folder and may plant one pointing at another student's folder or a course).
        await run_in_threadpool(storage.create_exclusive, target, base, storage.STUDENT, root)
        return Result(result=True)

    async def user_destroy(request: Request, username: str | None = Query(None), course: str | None = Query(None),
                           file: str | None = Query(None)) -> Result:
        info = await authenticate(sifu, request)
        params = await notey(request, ("username", "course", "file"))
        require_owner_or_staff(info, params["username"])
        require_volume()
        path = names.user_path(settings.notebook_root, params["username"], params["course"], params["file"])
        if not await run_in_threadpool(storage.remove, path, settings.notebook_root):
            raise ApiError(404, "not_found", "there is no such copy")
        return Result(result=True)

    # Both groups at both spellings of their URL (base first, as the OpenAPI document lists them).
    notebook_routes = {
        (base_paths, BaseNotebookRequest, "base notebooks"): [
            (base_exists, "GET", "Does the course's base notebook exist?", False),
            (base_create, "POST", "Create (staff: replace) the course's base notebook", True),
            (base_destroy, "DELETE", "Delete the course's base notebook (staff only)", False)],
        (user_paths, UserNotebookRequest, "students' copies"): [
            (user_exists, "GET", "Does the student's copy exist?", False),
            (user_create, "POST", "Copy the base notebook for the student (an existing copy is kept)", True),
            (user_destroy, "DELETE", "Delete the student's copy", False)],
    }
    for (paths, body, tag), routes in notebook_routes.items():
        add_notebook_routes(app, paths, body, tag, routes)

    return app


_TOKEN_HASH = re.compile(r"[0-9a-f]{64}")

# RFC 6265 cookie-octet: no whitespace, quotes, commas, semicolons or backslashes.
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]{1,512}")


def identity_cookie(value: str, max_age: int, secure: bool) -> str:
    """Host-only cookie, so Jupyter on another port of the same host receives it.

    In an iframe under the LMS over https the cookie is third-party: SameSite=None; Secure; Partitioned
    (CHIPS: kept per top-level site, so it still works where browsers block third-party cookies; a
    browser that does not know the attribute ignores it). Over plain http (development, same site)
    browsers refuse SameSite=None without Secure, so Lax. The header is built here because Python
    3.11's http.cookies cannot emit Partitioned; every part is checked, so nothing can add an attribute.
    """
    if not _COOKIE_VALUE.fullmatch(value):
        raise ValueError("identity cookie value has characters a cookie cannot carry")
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
        raise ValueError("identity cookie Max-Age must be a whole number of seconds, 0 or more")
    attributes = [f"{signing.COOKIE_NAME}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly"]
    attributes += ["Secure", "SameSite=None", "Partitioned"] if secure else ["SameSite=Lax"]
    return "; ".join(attributes)

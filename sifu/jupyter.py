"""Jupyter Server extension `sifu.jupyter`: Jupyter trusts only identities Sifu signed (DESIGN.md §5).

- SifuIdentityProvider: a request's user comes only from the `sifu_identity` cookie that Sifu's serve
  redirect sets (username, expiry, token hash, Ed25519-signed: Jupyter holds only the public key), and only
  while the Sifu token it was issued for is active and that same user's (Sifu answers; cached a few seconds).
  No Jupyter token, password or login form.
- SifuAuthorizer: a student reaches only `users/<their name>/...` through contents, files, sessions and
  kernels (a kernel belongs to the session path it was started for); terminals, server control and the
  server-wide events socket are off.
- SifuSessionManager / SifuKernelManager: the session and kernel lists a student receives hold only their
  own sessions (path under users/<name>/) and those sessions' kernels. The list handlers call
  list_sessions()/list_kernels() with no user, so the Authorizer records the user it authorised in a
  contextvar of the request's own asyncio task (tornado runs each request in a fresh task), and the
  managers read it; with no user recorded the lists are empty (fail closed).
- tornado_settings(): CSP frame-ancestors and iframe-friendly XSRF cookie flags, computed from the
  environment at start-up so one image serves every environment.
- PartitionCrossSiteCookies: with SIFU_COOKIE_SECURE, every cross-site cookie Jupyter sets (Secure;
  SameSite=None: the `_xsrf` cookie) also gets `Partitioned`, so browsers that block third-party cookies
  keep it inside the LMS's iframe and the student can start kernels and save there.

It imports jupyter_server and Sifu's pure modules, never Sifu's web stack or its database.
"""

from __future__ import annotations

import contextvars
import errno
import json
import os
import re
import sys
import time
from typing import Any, Mapping

from jupyter_client.multikernelmanager import DuplicateKernelError
from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.base.handlers import AuthenticatedFileHandler, JupyterHandler
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager, ServerKernelManager
from jupyter_server.services.sessions.sessionmanager import SessionManager
from jupyter_server.utils import import_item
from jupyter_server.auth.decorator import allow_unauthenticated, ws_authenticated
from tornado import web
from tornado.escape import url_unescape
from tornado.httputil import HTTPHeaders
from traitlets import Enum, Integer, Unicode, default

from sifu import signing
from sifu.config import SettingError, parse_bool, parse_origins


def public_key_from(env: Mapping[str, str]) -> Any:
    """The public half of Sifu's identity key: all Jupyter needs to verify identities, nothing to sign them."""
    text = env.get(signing.PUBLIC_KEY_VARIABLE, "")
    try:
        return signing.load_public_key(text)
    except ValueError as exc:
        raise SettingError(f"{signing.PUBLIC_KEY_VARIABLE} is missing or not an Ed25519 public key ({exc}); "
                           "start Jupyter through `python -m sifu.launch jupyter`, which derives it") from None


def tornado_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """ServerApp.tornado_settings for this site (NotebookApp settings are ignored by Jupyter Server 2)."""
    origins = parse_origins("SIFU_FRAME_ANCESTORS", env.get("SIFU_FRAME_ANCESTORS", ""))
    secure = parse_bool("SIFU_COOKIE_SECURE", env.get("SIFU_COOKIE_SECURE", "false"))
    csp = "; ".join(["frame-ancestors " + " ".join(["'self'", *origins]), "report-uri /api/security/csp-report"])
    # In a cross-site iframe over https the _xsrf cookie must be SameSite=None; Secure or it is never sent back
    # (and Partitioned, which PartitionCrossSiteCookies adds: tornado cannot).
    xsrf = {"path": "/", "samesite": "None", "secure": True} if secure else {"path": "/", "samesite": "Lax"}
    return {"headers": {"Content-Security-Policy": csp}, "xsrf_cookie_kwargs": xsrf}


# --- Partitioned cross-site cookies ------------------------------------------------------------------------


def partitioned(set_cookie: str) -> str:
    """A Set-Cookie value with `; Partitioned` appended if it is Secure; SameSite=None and not yet partitioned.

    Chromium drops an unpartitioned cookie set inside a cross-site iframe once third-party cookies are blocked;
    with `Partitioned` (CHIPS) it keeps it, keyed by the top-level site (the LMS). Other cookies are untouched.
    A `;` never occurs inside a cookie value that http.cookies wrote (it is escaped as \\073), so the
    attributes are the `;`-separated parts after the first.
    """
    attributes: dict[str, str] = {}
    for part in set_cookie.split(";")[1:]:
        key, _, value = part.partition("=")
        attributes[key.strip().lower()] = value.strip().lower()
    if "secure" in attributes and attributes.get("samesite") == "none" and "partitioned" not in attributes:
        return set_cookie.rstrip().rstrip(";") + "; Partitioned"
    return set_cookie


class PartitionedCookieHeaders(HTTPHeaders):
    """Response headers that partition each cross-site Set-Cookie value as it is added."""

    def add(self, name: str, value: str, **kwargs: Any) -> None:
        super().add(name, _partition_if_cookie(name, value), **kwargs)

    def __setitem__(self, name: str, value: str) -> None:
        super().__setitem__(name, _partition_if_cookie(name, value))


def _partition_if_cookie(name: str, value: Any) -> Any:
    return partitioned(value) if isinstance(value, str) and name.lower() == "set-cookie" else value


class PartitionCrossSiteCookies(web.OutputTransform):
    """Tornado output transform: Set-Cookie headers that are Secure; SameSite=None also get `Partitioned`.

    Python 3.11's http.cookies cannot write `Partitioned` (3.14 can) and tornado's set_cookie refuses it, so
    the attribute is added to the header text. RequestHandler.flush runs the transforms and only then adds
    the pending cookies (set_cookie, the _xsrf token) with add_header, i.e. to the headers object returned
    here; so this returns a copy whose add() partitions them. Headers already present are partitioned by
    the copy too.
    """

    def transform_first_chunk(self, status_code: int, headers: HTTPHeaders, chunk: bytes,
                              finishing: bool) -> tuple[int, HTTPHeaders, bytes]:
        return status_code, PartitionedCookieHeaders(headers), chunk


class SessionCheck:
    """Whose is the Sifu token behind an identity, and is it still active? Answers are cached for `cache_seconds`.

    Jupyter holds neither database credentials nor Sifu's secrets: it asks Sifu over loopback
    (GET {SIFU_INTERNAL_URL}/internal/identity-sessions/<token sha256>), which answers with the token's owner
    while the token is unexpired and unrevoked. Any other answer or an error counts as "not active": fail closed.
    """

    def __init__(self, sifu_url: str, cache_seconds: float = 5.0, timeout: float = 5.0):
        self.sifu_url = sifu_url.rstrip("/")
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self.cache: dict[str, tuple[str | None, float]] = {}

    async def _owner(self, session: str) -> str | None:
        from tornado.httpclient import AsyncHTTPClient, HTTPClientError

        try:
            reply = await AsyncHTTPClient().fetch(f"{self.sifu_url}/internal/identity-sessions/{session}",
                                                  request_timeout=self.timeout)
        except HTTPClientError as exc:
            if exc.code == 404:
                return None  # no such active token: revoked, expired or never issued
            raise
        owner = json.loads(reply.body).get("username")
        return owner if isinstance(owner, str) else None

    async def owner(self, session: str, log: Any) -> str | None:
        """The username the active token `session` belongs to, or None."""
        now = time.monotonic()
        cached = self.cache.get(session)
        if cached and now - cached[1] < self.cache_seconds:
            return cached[0]
        try:
            answer = await self._owner(session)
        except Exception as exc:  # network or HTTP errors: all mean "cannot tell", so refuse (and do not cache)
            log.error("sifu.jupyter: cannot ask Sifu whether a session is active (%s); refusing the identity",
                      type(exc).__name__)
            return None
        if len(self.cache) > 50_000:
            self.cache.clear()
        self.cache[session] = (answer, now)
        return answer


def session_check_from(env: Mapping[str, str]) -> SessionCheck:
    url = env.get("SIFU_INTERNAL_URL", "").strip()
    if not re.fullmatch(r"https?://[A-Za-z0-9.:\[\]-]+", url):
        raise SettingError(f"SIFU_INTERNAL_URL={url!r} must be Sifu's own address, e.g. http://127.0.0.1:3334; "
                           "Jupyter asks it whether an identity's token is still active")
    raw = env.get("SIFU_REVOCATION_CACHE_SECONDS", "5")
    try:
        seconds = float(raw)
    except ValueError:
        raise SettingError(f"SIFU_REVOCATION_CACHE_SECONDS={raw!r} is not a number of seconds") from None
    return SessionCheck(url, seconds)


# --- identity ---------------------------------------------------------------------------------------------

# Page routes that name a file path; a student may open only their own. (API routes go through the Authorizer.)
_PAGE_PATH = re.compile(r"^/(?:notebooks|edit|tree|view|files|nbconvert/[^/]+|lab/tree|consoles)(?:/(?P<path>.*))?$")


def owns(username: str, path: str) -> bool:
    """Is `path` (relative to the notebook root, URL-decoded) inside users/<username>/?"""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts or any("\\" in p or "\x00" in p for p in parts):
        return False
    return len(parts) >= 2 and parts[0] == "users" and parts[1] == username


class SifuLoginHandler(JupyterHandler):
    """There is no login here: identities come from Sifu's serve redirect only."""

    @allow_unauthenticated
    def get(self) -> None:
        self.set_status(401)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish("Open this notebook from your course: Jupyter accepts only sign-ins made through Sifu.\n")

    post = get


class SifuIdentityProvider(IdentityProvider):
    """Accepts only a valid, unexpired Sifu-signed identity cookie."""

    login_handler_class = SifuLoginHandler

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.public_key = public_key_from(os.environ)
        self.sessions = session_check_from(os.environ)

    @property
    def auth_enabled(self) -> bool:
        return True

    @property
    def login_available(self) -> bool:
        return True

    @property
    def logout_available(self) -> bool:
        return False

    def get_handlers(self) -> list:
        return [("/login", self.login_handler_class)]

    async def get_user(self, handler: web.RequestHandler) -> User | None:
        identity = signing.read_identity(self.public_key, handler.get_cookie(signing.COOKIE_NAME))
        if identity is None:
            return None
        username = identity.username
        base_url = handler.settings.get("base_url", "/")
        path = handler.request.path[len(base_url) - 1:] if handler.request.path.startswith(base_url) else handler.request.path
        match = _PAGE_PATH.match(path)
        if match and match.group("path") is not None and not owns(username, url_unescape(match.group("path"), plus=False)):
            # A page for someone else's file: treated as not signed in, so it is refused before it renders.
            return None
        if await self.sessions.owner(identity.session, self.log) != username:
            return None  # the Sifu token behind it was revoked, has expired, or is someone else's
        return User(username=username, name=username, display_name=username)

    def process_login_form(self, handler: web.RequestHandler) -> User | None:
        return None

    def validate_security(self, app: Any, ssl_options: Any = None) -> None:
        self.log.info("Jupyter accepts only Sifu-signed identities")


# --- authorization ---------------------------------------------------------------------------------------

_API_PATH = re.compile(r"^/(?:api/contents|files|view|api/nbconvert/[^/]+|nbconvert/[^/]+)(?:/(?P<path>.*))?$")
_KERNEL = re.compile(r"^/api/kernels/(?P<kernel>[0-9a-fA-F-]{1,64})(?:/.*)?$")
_SESSION = re.compile(r"^/api/sessions/(?P<session>[0-9a-fA-F-]{1,64})$")


# The user the Authorizer last authorised in this request. Each tornado request runs in its own asyncio
# task with its own copy of the context, so a value set here is seen only by the rest of that request.
authorized_user: contextvars.ContextVar[str | None] = contextvars.ContextVar("sifu_authorized_user", default=None)


class SifuAuthorizer(Authorizer):
    """A student reaches only users/<their name>/...; terminals and server control are refused."""

    async def is_authorized(self, handler: JupyterHandler, user: User, action: str, resource: str) -> bool:
        # Read by SifuSessionManager/SifuKernelManager when the handler then lists sessions or kernels.
        authorized_user.set(user.username)
        if resource in ("terminals", "server"):
            return False
        if resource == "events":
            # The events socket broadcasts every student's contents events (their paths) to every
            # subscriber, and POST /api/events would let a student inject events: both closed.
            return False
        if resource in ("kernelspecs", "config") and action != "read":
            return False
        base_url = handler.settings.get("base_url", "/")
        path = "/" + handler.request.path[len(base_url):] if handler.request.path.startswith(base_url) else handler.request.path
        if resource == "nbconvert" and path.rstrip("/") == "/api/nbconvert":
            return action == "read"  # the list of export formats
        if resource in ("contents", "nbconvert"):
            return self._contents(user, path, handler)
        if resource == "sessions":
            return await self._sessions(user, path, handler)
        if resource == "kernels":
            return await self._kernels(user, path, handler)
        return True

    @staticmethod
    def _body(handler: JupyterHandler) -> dict[str, Any]:
        try:
            body = json.loads(handler.request.body or b"{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def _contents(self, user: User, path: str, handler: JupyterHandler) -> bool:
        match = _API_PATH.match(path)
        if not match:
            return False
        target = url_unescape(match.group("path") or "", plus=False)
        if not owns(user.username, target):
            return False
        if handler.request.method in ("POST", "PATCH", "PUT"):
            body = self._body(handler)
            for key in ("path", "copy_from"):  # rename and copy name a second path in the body
                if key in body and not (isinstance(body[key], str) and owns(user.username, body[key])):
                    return False
        return True

    async def _session_path(self, handler: JupyterHandler, **query: str) -> str | None:
        try:
            model = await handler.session_manager.get_session(**query)
        except Exception:  # no such session: web.HTTPError 404 or KeyError, depending on the version
            return None
        return model.get("path")

    async def _sessions(self, user: User, path: str, handler: JupyterHandler) -> bool:
        method = handler.request.method
        if path.rstrip("/") == "/api/sessions":
            if method == "GET":
                return True  # SifuSessionManager lists only the student's own sessions
            body = self._body(handler)
            return (isinstance(body.get("path"), str) and owns(user.username, body["path"])
                    and await self._may_use_kernel(user, handler, body))
        match = _SESSION.match(path)
        if not match:
            return False
        owned = await self._session_path(handler, session_id=match.group("session"))
        if owned is None or not owns(user.username, owned):
            return False
        if method == "PATCH":
            body = self._body(handler)
            if "path" in body and not (isinstance(body["path"], str) and owns(user.username, body["path"])):
                return False
            return await self._may_use_kernel(user, handler, body)
        return True

    async def _may_use_kernel(self, user: User, handler: JupyterHandler, body: dict[str, Any]) -> bool:
        """A session body naming a kernel by id may name only one of the student's own: Jupyter would otherwise
        attach the session to whatever running kernel has that id, another student's included."""
        kernel = body.get("kernel")
        kernel_id = kernel.get("id") if isinstance(kernel, dict) else None
        if kernel_id is None:
            return True
        owned = await self._session_path(handler, kernel_id=str(kernel_id))
        if owned is not None:
            return owns(user.username, owned)
        return str(kernel_id) not in handler.kernel_manager  # a running kernel in nobody's session is not theirs

    async def _kernels(self, user: User, path: str, handler: JupyterHandler) -> bool:
        if path.rstrip("/") == "/api/kernels":
            # SifuKernelManager lists only the student's own; a kernel started outside a session would belong to nobody.
            return handler.request.method == "GET"
        match = _KERNEL.match(path)
        if not match:
            return False
        owned = await self._session_path(handler, kernel_id=match.group("kernel"))
        return owned is not None and owns(user.username, owned)


# --- symlinks: Jupyter serves only what really is in the student's folder ------------------------------------


def confined(root: str, os_path: str) -> bool:
    """Does `os_path`, with every symlink resolved, stay inside the users/<name>/ its path names?

    A student's kernel owns their folder and can leave a symlink there to another student's file, which Jupyter
    (whose group reaches every folder) would then serve; the real path has to stay in the folder it claims.
    Paths outside users/ (the root itself, courses/) are left to the Authorizer."""
    real_root = os.path.realpath(root)
    relative = os.path.relpath(os.path.abspath(os_path), os.path.abspath(root)).split(os.sep)
    if len(relative) < 2 or relative[0] != "users":
        return True
    folder = os.path.join(real_root, "users", relative[1])
    real = os.path.realpath(os_path)
    return real == folder or real.startswith(folder + os.sep)


class ConfinedFileHandler(AuthenticatedFileHandler):
    """/files/...: served only if its real path stays in the student's folder (tornado's own check resolves
    symlinks against the whole root only)."""

    def validate_absolute_path(self, root: str, absolute_path: str) -> str:
        if not confined(root, absolute_path):
            raise web.HTTPError(404)
        return super().validate_absolute_path(root, absolute_path)


class LeavesFolder(web.HTTPError, OSError):
    """404 to a request for such a path; an EACCES OSError to a folder listing, which then skips the entry quietly."""

    def __init__(self) -> None:
        web.HTTPError.__init__(self, 404, "no such file in the student's folder")
        self.errno = errno.EACCES


class SifuContentsManager(AsyncLargeFileManager):
    """The contents API refuses (404, as for a missing file) any path whose real path leaves its student's folder."""

    @default("files_handler_class")
    def _files_handler_class_default(self) -> type:
        return ConfinedFileHandler

    def _get_os_path(self, path: str) -> str:
        os_path = super()._get_os_path(path)
        if not confined(self.root_dir, os_path):
            raise LeavesFolder()
        return os_path


# --- the lists a student sees ---------------------------------------------------------------------------


class KernelCapReached(DuplicateKernelError):
    """One kernel more than the student may run. A DuplicateKernelError because that is the one exception the
    sessions handler answers with 409 and its own message (any other becomes a 500)."""

    def __init__(self, cap: int):
        super().__init__(f"You already have {cap} kernels running, the most one student may have at once. Close a "
                         "notebook you are not using (File > Close and Shut Down Notebook) and try again.")


class SifuSessionManager(SessionManager):
    """list_sessions() holds only the sessions of the user authorised for this request; a student may have at most
    `max_kernels_per_student` kernels running (one more is refused with 409 and a message naming the cap)."""

    max_kernels_per_student = Integer(3, config=True, help="Kernels one student may have running at once")

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.starting: dict[str, int] = {}  # kernels being started per student, not yet in the session table

    async def list_sessions(self) -> list[dict[str, Any]]:
        username = authorized_user.get()
        if username is None:
            return []  # not inside an authorised request: nobody to list for
        # The full list first: building it also drops rows whose kernel has gone (Jupyter's own upkeep).
        return [model for model in await super().list_sessions() if owns(username, model.get("path") or "")]

    def get_kernel_env(self, path: str | None, name: Any = None) -> dict[str, str]:
        """Kernels start from an allow-list (sifu.launch.kernel_environment), not Jupyter's whole environment."""
        from sifu.launch import kernel_environment

        return kernel_environment(os.environ) | {
            "JPY_SESSION_NAME": super().get_kernel_env(path, name)["JPY_SESSION_NAME"]}

    async def start_kernel_for_session(self, session_id: str, path: str | None, name: Any, type: Any,
                                       kernel_name: Any, kernel_id: Any = None) -> str:
        """Refused once the student whose folder `path` is in has the cap's number of kernels running or starting.
        The count and the reservation happen with no await in between, so concurrent requests cannot both pass."""
        parts = [p for p in (path or "").split("/") if p]
        username = parts[1] if len(parts) >= 2 and parts[0] == "users" else ""
        running = [k for k in self.kernel_ids_of(username) if k in self.kernel_manager]
        if len(running) + self.starting.get(username, 0) >= self.max_kernels_per_student:
            raise KernelCapReached(self.max_kernels_per_student)
        self.starting[username] = self.starting.get(username, 0) + 1
        try:
            return await super().start_kernel_for_session(session_id=session_id, path=path, name=name, type=type,
                                                          kernel_name=kernel_name, kernel_id=kernel_id)
        finally:
            self.starting[username] -= 1
            if not self.starting[username]:
                del self.starting[username]

    def kernel_ids_of(self, username: str) -> set[str]:
        """Kernels started for a session under users/<username>/ (one read of the in-memory session table)."""
        rows = self.cursor.execute("SELECT kernel_id, path FROM session").fetchall()
        return {row["kernel_id"] for row in rows if owns(username, row["path"] or "")}


class LimitedKernelManager(ServerKernelManager):
    """Each kernel starts under resource limits and first in line for the OOM killer (sifu/kernel_limits.py), and,
    unless the configuration deliberately says otherwise, through the root kernel broker as its student's own uid
    (sifu/kernel_provisioner.py; fails closed)."""

    kernel_launch = Enum(["broker", "same-user"], default_value="broker", config=True,
                         help="broker: every kernel as its student's uid through the kernel broker (the image). "
                              "same-user: kernels as Jupyter's own user, for process-mode local runs only.")
    kernel_broker_socket = Unicode("/run/sifu-broker/broker.sock", config=True, help="The kernel broker's socket")

    @property
    def kernel_spec(self) -> Any:
        spec = super().kernel_spec
        if spec is not None and self.kernel_launch == "broker":
            from sifu.kernel_provisioner import NAME

            # Whatever the installed kernel.json says: this provisioner, and interrupts as messages (the
            # kernel is another uid's, so Jupyter cannot signal it).
            spec.metadata["kernel_provisioner"] = {"provisioner_name": NAME,
                                                   "config": {"socket_path": self.kernel_broker_socket}}
            spec.interrupt_mode = "message"
        return spec

    exit_code: int | None = None  # how the kernel last exited (sifu/kernel_memory.py tells the student if for memory)
    stopped_for: str | None = None  # why the kernel broker stopped it (over the disk cap), told to the student

    async def is_alive(self) -> bool:
        alive = await super().is_alive()
        if not alive and self.provisioner is not None and self.provisioner.has_process:
            self.exit_code = await self.provisioner.poll()
            self.stopped_for = getattr(self.provisioner, "stopped_for", None)
        return alive

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        return [sys.executable, "-m", "sifu.kernel_limits", "--", *super().format_kernel_cmd(extra_arguments)]


RECONNECT_MS = 10  # a failed connect to a kernel (not bound yet, or gone) is a syscall on a Unix socket path


class SifuKernelManager(AsyncMappingKernelManager):
    """list_kernels() holds only kernels of the authorised user's sessions (also used by /api/status); every
    kernel is a LimitedKernelManager."""

    @default("kernel_manager_class")
    def _default_kernel_manager_class(self) -> str:
        return "sifu.jupyter.LimitedKernelManager"

    @default("context")
    def _context_default(self) -> Any:
        """Every socket Jupyter opens to a kernel refuses a message over MAX_KERNEL_MESSAGE (sifu/kernel_output.py):
        ZMQ drops the connection on the header, before allocating, so a kernel cannot fill Jupyter's memory; and
        queues at most MAX_QUEUED_MESSAGES unread; and retries a connect every RECONNECT_MS.

        Why the retry matters (issue 14, a cold kernel's first result): Jupyter connects its activity watcher to a
        new kernel's IOPub before the kernel has bound it, and ZMQ retries a failed connect every 100 ms by default.
        A kernel forked from the broker's zygote answers kernel_info within that window, so the watcher missed the
        status messages of the websocket's first kernel_info; the websocket's open waits (jupyter_server's nudge)
        until the watcher has seen one, and the next comes with the nudge's next kernel_info, 0.5 s later. Measured
        through the image with Jupyter's debug log: 1 cold kernel in 8 needed that second attempt (0.63 s to the first
        result against 0.21-0.41 s)."""
        import zmq

        from sifu.kernel_output import MAX_KERNEL_MESSAGE, MAX_QUEUED_MESSAGES

        context = super()._context_default()
        context.setsockopt(zmq.MAXMSGSIZE, MAX_KERNEL_MESSAGE)
        context.setsockopt(zmq.RCVHWM, MAX_QUEUED_MESSAGES)
        context.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)
        return context

    def start_buffering(self, kernel_id: str, session_key: str, channels: dict[str, Any]) -> None:
        """While no browser is connected, jupyter_server keeps a kernel's messages for the next one in a list without
        bound (its own TODO says so): a cell flooding output after the tab closed would fill Jupyter's memory. Here
        the list stops growing at MAX_OFFLINE_BUFFER bytes (later messages are dropped)."""
        from functools import partial

        from sifu.kernel_output import MAX_OFFLINE_BUFFER

        super().start_buffering(kernel_id, session_key, channels)
        if not self.buffer_offline_messages:
            return
        kept = self._kernel_buffers[kernel_id]["buffer"]
        size = [0]

        def buffer_message(channel: str, parts: list) -> None:
            length = sum(len(part) for part in parts)
            if size[0] + length <= MAX_OFFLINE_BUFFER:
                size[0] += length
                kept.append((channel, parts))

        for channel, stream in channels.items():
            stream.on_recv(partial(buffer_message, channel))

    # Wired by the extension at load time: the session table says whose each kernel is.
    session_manager: SifuSessionManager | None = None

    def list_kernels(self) -> list[dict[str, Any]]:
        username = authorized_user.get()
        if username is None or self.session_manager is None:
            return []
        mine = self.session_manager.kernel_ids_of(username)
        return [model for model in super().list_kernels() if model["id"] in mine]


# --- routes a student's notebook page reaches, answered without errors or log noise ------------------------


class OwnFolderRedirect(JupyterHandler):
    """GET /lab (the toolbar's "JupyterLab" link; JupyterLab is not served here): the student's own folder,
    not the 500 that Notebook's error page gives without JupyterLab's page config."""

    @web.authenticated
    def get(self, _rest: str = "") -> None:
        self.redirect(f"{self.base_url}tree/users/{self.current_user.username}")


class RootListing(JupyterHandler):
    """GET /api/contents (the notebook root, which Notebook 7 lists in the background): an empty directory.

    The Authorizer refuses the root to a student (it names everyone's folders); answering that with 403
    wrote three warnings to Jupyter's log every few seconds per open notebook. Nothing is listed here.
    """

    @web.authenticated
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"name": "", "path": "", "type": "directory", "format": "json", "content": [],
                                "created": None, "last_modified": None, "mimetype": None, "writable": False,
                                "size": None, "hash": None, "hash_algorithm": None}))


def _quiet_events_socket() -> type:
    from tornado.websocket import WebSocketHandler

    class QuietEventsSocket(WebSocketHandler, JupyterHandler):
        """/api/events/subscribe: Jupyter's socket broadcasts every student's contents events, so it is closed to
        students; Notebook 7 retried a refused socket forever (a warning each time). This one is accepted and
        never sends anything; what a client sends is dropped."""

        @ws_authenticated
        async def get(self, *args: Any, **kwargs: Any) -> None:
            await super().get(*args, **kwargs)

        def on_message(self, message: Any) -> None:
            pass

    return QuietEventsSocket


def _prepend_handlers(web_app: Any, handlers: list) -> None:
    """Add `handlers` ahead of every route registered so far (tornado tries host rules in the order added)."""
    web_app.add_handlers(".*$", handlers)
    rules = web_app.default_router.rules
    rules.insert(0, rules.pop(-2))  # add_handlers put it just before the final catch-all


# --- the extension -------------------------------------------------------------------------------------------


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "sifu.jupyter"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    # Refuse to run with any other identity provider: that would let in users Sifu never signed.
    if not isinstance(serverapp.identity_provider, SifuIdentityProvider):
        raise RuntimeError("sifu.jupyter needs ServerApp.identity_provider_class = sifu.jupyter.SifuIdentityProvider")
    if not isinstance(serverapp.authorizer, SifuAuthorizer):
        raise RuntimeError("sifu.jupyter needs ServerApp.authorizer_class = sifu.jupyter.SifuAuthorizer")
    # Without these the session and kernel lists would show every student's paths.
    if not isinstance(serverapp.session_manager, SifuSessionManager):
        raise RuntimeError("sifu.jupyter needs ServerApp.session_manager_class = sifu.jupyter.SifuSessionManager")
    if not isinstance(serverapp.kernel_manager, SifuKernelManager):
        raise RuntimeError("sifu.jupyter needs ServerApp.kernel_manager_class = sifu.jupyter.SifuKernelManager")
    if not issubclass(import_item(serverapp.kernel_manager.kernel_manager_class), LimitedKernelManager):
        raise RuntimeError("sifu.jupyter needs kernels started by sifu.jupyter.LimitedKernelManager (resource limits)")
    if not isinstance(serverapp.contents_manager, SifuContentsManager):
        raise RuntimeError("sifu.jupyter needs ServerApp.contents_manager_class = sifu.jupyter.SifuContentsManager")
    serverapp.kernel_manager.session_manager = serverapp.session_manager
    base = serverapp.base_url.rstrip("/")
    _prepend_handlers(serverapp.web_app, [
        (rf"{base}/lab(?!/api/)(/.*)?", OwnFolderRedirect),
        (rf"{base}/api/contents/?", RootListing),
        (rf"{base}/api/events/subscribe", _quiet_events_socket()),
    ])
    if parse_bool("SIFU_COOKIE_SECURE", os.environ.get("SIFU_COOKIE_SECURE", "false")):
        # Cross-site over https: Jupyter's _xsrf cookie must be Partitioned like Sifu's identity cookie, or
        # Chromium drops it in the LMS's iframe and every POST/PUT (start a kernel, save) fails XSRF (403).
        serverapp.web_app.add_transform(PartitionCrossSiteCookies)
    serverapp.log.info("sifu.jupyter: only Sifu-signed identities; students confined to users/<name>/")

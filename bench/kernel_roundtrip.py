"""Benchmark: a cell's round trip over Jupyter's kernel websocket against the same kernel over ZMQ (issue 14, item 1).

Run: .venv/bin/python bench/kernel_roundtrip.py [--rounds 40] [--no-baseline] [--no-browser] [--sequential]
     (or ./inv bench --name kernel_roundtrip)

Starts devlms + Sifu + Jupyter as processes (tests/support/sifu_stack.py, the rendered config) and nginx with
the rendered vhosts in front of them (tests/support/nginx.py), signs a student in the XBlock's way (auth code,
/token, the serve redirect through nginx sets the identity cookie), starts a kernel and executes `6*7` N times
over one keep-alive websocket, timing each from the execute_request to the kernel's `idle` status:
through nginx (legacy JSON and the v1 protocol) and on the app port directly. The ZMQ floor is the same loop
with jupyter_client on the same kernel's connection file. The paths take turns round by round (--sequential:
one path after the other), so a load change on the shared machine hits all of them alike.

The baseline (unless --no-baseline) is a second Jupyter on the same root and database, with the config
line that our fix adds (sifu/kernel_latency.py: TCP_NODELAY on the kernel websocket) reset to jupyter_server's
own connection class, behind its own nginx: before and after in the same run. Chromium (Debian's, via Playwright;
skipped when it is not installed or with --no-browser) times Shift+Enter on the `6*7` cell to its output appearing
in Notebook 7, through nginx, on both servers.

Appends a section to bench/RESULTS.md ending in `- round trip / ZMQ floor: RATIO` (through nginx, p50, with the fix).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.record import percentile, record  # noqa: E402
from tests.integration.sifu.helpers import COURSE, prepare_copy, serve_url  # noqa: E402
from tests.support import nginx  # noqa: E402
from tests.support.browser import CHROMIUM  # noqa: E402
from tests.support.jupyter_client import JupyterSession  # noqa: E402
from tests.support.processes import free_port  # noqa: E402
from tests.support.sifu_stack import JupyterProc, Stack, start_jupyter, start_stack  # noqa: E402

RUN_CELL_KEY = "Shift+Enter"  # run and advance, as a student does
WARM_UP = 5  # rounds run before timing on every path (first executions warm the kernel and the connection)
FILE = "roundtrip.ipynb"
# A student thinks between cells: after a pause the receiver's delayed-ACK timer has fired, so Nagle rarely holds
# a frame then. Measured apart (rounds after a pause), to show what the back-to-back rounds do not.
PAUSE, PAUSED_ROUNDS = 0.5, 10
SETTLE = 0.01  # s between back-to-back rounds (see timed_rounds)
# The baseline's Jupyter: the line our config adds, reset to jupyter_server's default class (appended, so it wins).
UPSTREAM_CONNECTION = ('\nc.ServerApp.kernel_websocket_connection_class = '
                       '"jupyter_server.services.kernels.connection.channels.ZMQChannelsWebsocketConnection"\n')


@dataclass
class Target:
    """One Jupyter server with nginx in front of it, and a student's kernel on it."""

    name: str
    jupyter: JupyterProc
    runtime_dir: Path  # where that Jupyter writes kernel connection files
    public_url: str = ""  # through nginx
    kernel_id: str = ""
    session: JupyterSession | None = None

    def connection_file(self) -> Path:
        return self.runtime_dir / f"kernel-{self.kernel_id}.json"


V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"  # what Notebook 7 and JupyterLab speak; None: legacy JSON


def execute_request(msg_id: str, session: str) -> dict:
    return {
        "header": {"msg_id": msg_id, "username": "bench", "session": session, "msg_type": "execute_request",
                   "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": "6*7", "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True}}


def encode_v1(msg: dict) -> bytes:
    """A message in the v1 binary framing: part count, part offsets (uint64 LE), channel, the four JSON parts."""
    parts = [msg["channel"].encode(), *(json.dumps(msg[key]).encode() for key in ("header", "parent_header", "metadata", "content"))]
    offsets = [8 * (len(parts) + 2)]
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    return b"".join(n.to_bytes(8, "little") for n in (len(offsets), *offsets)) + b"".join(parts)


def decode_v1(frame: bytes) -> dict:
    count = int.from_bytes(frame[:8], "little")
    offsets = [int.from_bytes(frame[8 * (i + 1):8 * (i + 2)], "little") for i in range(count)]
    header, parent_header, _metadata, content = (json.loads(frame[offsets[i]:offsets[i + 1]]) for i in range(1, 5))
    return {"header": header, "msg_type": header["msg_type"], "parent_header": parent_header, "content": content}


def is_idle_for(msg: dict, msg_id: str) -> bool:
    return (msg.get("parent_header", {}).get("msg_id") == msg_id and msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "idle")


class WebsocketPath:
    """One keep-alive kernel websocket (legacy JSON protocol, or v1) on which `6*7` runs to idle, round by round."""

    def __init__(self, base_url: str, kernel_id: str, cookie: str, protocol: str | None = None):
        import websocket

        netloc = urlsplit(base_url).netloc
        self.ws = websocket.create_connection(
            f"ws://{netloc}/api/kernels/{quote(kernel_id)}/channels?session_id={uuid.uuid4().hex}",
            header=[f"Cookie: {cookie}"], origin=f"http://{netloc}", timeout=30, subprotocols=[protocol] if protocol else None)
        assert self.ws.getsubprotocol() == protocol, self.ws.getsubprotocol()
        self.v1 = protocol == V1_PROTOCOL
        self.session = uuid.uuid4().hex

    def round(self) -> float:
        msg_id = uuid.uuid4().hex
        started = time.perf_counter()
        request = execute_request(msg_id, self.session)
        if self.v1:
            self.ws.send_binary(encode_v1(request))
        else:
            self.ws.send(json.dumps(request))
        while not is_idle_for(decode_v1(self.ws.recv()) if self.v1 else json.loads(self.ws.recv()), msg_id):
            pass
        return time.perf_counter() - started

    def close(self) -> None:
        self.ws.close()


class ZmqPath:
    """The floor: the same `6*7` to idle with jupyter_client straight on the kernel's ZMQ sockets."""

    def __init__(self, connection_file: Path):
        from jupyter_client import BlockingKernelClient

        self.client = BlockingKernelClient(connection_file=str(connection_file))
        self.client.load_connection_file()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=30)

    def round(self) -> float:
        started = time.perf_counter()
        msg_id = self.client.execute("6*7")
        while not is_idle_for(self.client.get_iopub_msg(timeout=30), msg_id):
            pass
        return time.perf_counter() - started

    def close(self) -> None:
        self.client.stop_channels()


def timed_rounds(paths: dict[str, WebsocketPath | ZmqPath], rounds: int, interleave: bool) -> dict[str, list[float]]:
    """`rounds` timed rounds per path after WARM_UP untimed ones. Interleaved: one round of each path in turn, the
    first path rotating, so none always follows the ZMQ client (which is done before Jupyter has relayed that
    round's iopub to the other, idle websockets). SETTLE between rounds lets that relay finish before the next
    round starts; it is far shorter than a delayed ACK, so the stall it measures is unchanged."""
    names = list(paths)
    if interleave:
        schedule = [names[i % len(names):] + names[:i % len(names)] for i in range(WARM_UP + rounds)]
    else:
        schedule = [[name] for name in names for _ in range(WARM_UP + rounds)]
    times: dict[str, list[float]] = {name: [] for name in names}
    counts = dict.fromkeys(names, 0)
    for turn in schedule:
        for name in turn:
            time.sleep(SETTLE)
            elapsed = paths[name].round()
            counts[name] += 1
            if counts[name] > WARM_UP:
                times[name].append(elapsed)
    return times


def rounds_after_pauses(path: WebsocketPath) -> list[float]:
    times = []
    for _ in range(PAUSED_ROUNDS):
        time.sleep(PAUSE)
        times.append(path.round())
    return times


# --- the stack --------------------------------------------------------------------------------------------------


def nginx_settings(workdir: Path, public: dict[str, int]):
    """The deploy's default settings with nginx listening on `public` ports (the vhosts render from these)."""
    from deployer import config as deployer_config
    from deployer.localrun import with_ports

    overrides = workdir / "nginx-overrides.yml"
    overrides.write_text("{}\n")
    loaded = deployer_config.load(flags={}, environ={}, overrides_file=overrides, answers_file=workdir / "no-answers.yml")
    return with_ports(loaded.settings, public)


@contextmanager
def process_stack(name: str) -> Iterator[tuple[ExitStack, Path, Stack]]:
    """The process-mode stack (devlms, Sifu, Jupyter) in a scratch directory; what the block adds to the ExitStack
    stops before the stack, and the directory goes last."""
    workdir = Path(tempfile.mkdtemp(prefix=f"sifu-bench-{name}-", dir="/tmp"))
    workdir.chmod(0o755)
    try:
        with ExitStack() as exits:
            stack = start_stack(workdir)
            exits.callback(stack.stop)
            yield exits, workdir, stack
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def put_nginx_in_front(exits: ExitStack, workdir: Path, name: str, sifu_url: str, jupyter_url: str,
                       vhost_transform=lambda text: text) -> dict[str, str]:
    """nginx with the rendered vhosts on free ports, proxying to these app ports; returns the public URLs."""
    public = {"sifu": free_port(), "jupyter": free_port()}
    upstream = {"sifu": urlsplit(sifu_url).port, "jupyter": urlsplit(jupyter_url).port}
    prefix = workdir / f"nginx-{name}"
    conf = nginx.write_site(prefix, nginx_settings(workdir, public), "127.0.0.1", upstream, vhost_transform)
    exits.enter_context(nginx.serving(prefix, conf, list(public.values())))
    return {svc: f"http://127.0.0.1:{port}" for svc, port in public.items()}


def sign_in(stack: Stack, sifu_public_url: str, username: str) -> dict[str, str]:
    """The XBlock's way: auth code and /token, the student's copy, then the serve redirect (through nginx) sets
    the identity cookie that Jupyter trusts."""
    import httpx

    token = stack.token(username)
    prepare_copy(stack.sifu.url, token, username, COURSE, FILE)
    reply = httpx.get(serve_url(sifu_public_url, username, COURSE, FILE, token), timeout=30)
    assert reply.status_code == 302, reply.text
    return {name: value for name, value in reply.cookies.items()}


def start_kernel(target: Target, cookies: dict[str, str], username: str) -> None:
    session = JupyterSession(target.jupyter.url, cookies)
    notebook = f"users/{username}/{COURSE}/{FILE}"
    assert session.prime_xsrf(f"/notebooks/users/{username}/{quote(COURSE)}/{FILE}").status_code == 200
    reply = session.start_session(notebook)
    assert reply.status_code == 201, reply.text
    target.session, target.kernel_id = session, reply.json()["kernel"]["id"]


def measure(target: Target, rounds: int, interleave: bool) -> dict[str, list[float]]:
    """ZMQ floor, websocket through nginx (legacy JSON and v1) and direct, on the same kernel, one keep-alive
    connection each."""
    cookie = target.session.cookie_header()
    paths = {}
    try:
        paths["zmq"] = ZmqPath(target.connection_file())
        paths["nginx"] = WebsocketPath(target.public_url, target.kernel_id, cookie)
        paths["nginx_v1"] = WebsocketPath(target.public_url, target.kernel_id, cookie, V1_PROTOCOL)
        paths["direct"] = WebsocketPath(target.jupyter.url, target.kernel_id, cookie)
        times = timed_rounds(paths, rounds, interleave)
        times["nginx_paused"] = rounds_after_pauses(paths["nginx"])
        return times
    finally:
        for path in paths.values():
            path.close()


# --- Chromium ---------------------------------------------------------------------------------------------------


def open_notebook(browser, target: Target, cookies: dict[str, str], username: str):
    """A page of Notebook 7 on the student's notebook, through nginx, with the cookie the serve redirect set,
    once its kernel websocket is talking."""
    context = browser.new_context()
    context.add_init_script(WEBSOCKET_CLOCK_JS)
    context.add_cookies([{"name": name, "value": value, "url": target.public_url} for name, value in cookies.items()])
    page = context.new_page()
    page.goto(f"{target.public_url}/notebooks/users/{username}/{quote(COURSE)}/{FILE}")
    # On a slow machine Notebook 7 may ask which kernel to use (it loaded before the kernel specs did):
    # accept its choice, python3, which joins the student's session.
    page.wait_for_function("() => window.sifuKernelFrames > 0 || document.querySelector('.jp-Dialog')", timeout=60_000)
    if page.locator(".jp-Dialog").count():
        page.locator(".jp-Dialog .jp-mod-accept").click()
    page.wait_for_function("() => window.sifuKernelFrames > 0", timeout=60_000)
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=60_000)
    return page


def run_cell(page) -> tuple[float, float]:
    """Shift+Enter on the `6*7` cell; returns (keydown to output, request sent to result frame received)."""
    cell = page.locator(".jp-Notebook .jp-CodeCell").first
    cell.locator(".jp-InputPrompt").click()  # selects the cell (command mode)
    cell.evaluate(ARM_CELL_TIMER_JS)
    page.keyboard.press(RUN_CELL_KEY)
    page.wait_for_function("() => window.sifuCellTimer.end > 0", timeout=30_000)
    timer = page.evaluate("() => window.sifuCellTimer")
    return (timer["end"] - timer["start"]) / 1000, (timer["received"] - timer["sent"]) / 1000


def browser_times(targets: list[Target], cookies: dict[str, str], username: str, rounds: int,
                  home: Path) -> dict[str, dict[str, list[float]]]:
    """Chromium, one page per server, their rounds alternating (so both see the same load): Shift+Enter to the
    `42` being in the page, timed in the page from the keydown to the MutationObserver seeing the new result
    (before paint); and the part of it between the page's websocket sending the request and receiving the
    frame the output came from (the rest is the front end's own work, on the page's main thread)."""
    from tests.support.browser import chromium  # imports Playwright

    times = {target.name: {"browser": [], "browser_wire": []} for target in targets}
    with chromium(home) as browser:
        pages = [(target.name, open_notebook(browser, target, cookies, username)) for target in targets]
        for i in range(WARM_UP + rounds):
            for name, page in pages[i % len(pages):] + pages[:i % len(pages)]:
                total, wire = run_cell(page)
                if i >= WARM_UP:
                    times[name]["browser"].append(total)
                    times[name]["browser_wire"].append(wire)
    return times


# Before the page's own scripts: every websocket notes, on the armed timer, its first send after the keydown and
# each frame received until the output is there; kernel websockets count their frames (the page is connected).
WEBSOCKET_CLOCK_JS = """
(() => {
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    const timer = window.sifuCellTimer;
    if (timer && timer.start && !timer.sent) timer.sent = performance.now();
    return send.call(this, data);
  };
  const Original = WebSocket;
  window.WebSocket = function (...args) {
    const socket = new Original(...args);
    const kernel = String(args[0]).includes('/api/kernels/');
    socket.addEventListener('message', () => {
      if (kernel) window.sifuKernelFrames = (window.sifuKernelFrames || 0) + 1;
      const timer = window.sifuCellTimer;
      if (timer && timer.sent && !timer.end) timer.received = performance.now();
    });
    return socket;
  };
  window.WebSocket.prototype = Original.prototype;
  Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
})();
"""

# Armed on the cell before each Shift+Enter: the keydown reaching the page, then the moment the cell shows an
# execute result `42` under a new `[n]:` prompt (the output node may be updated in place, so not a new node).
ARM_CELL_TIMER_JS = """
(cell) => {
  const timer = window.sifuCellTimer = {start: 0, end: 0, sent: 0, received: 0};
  const prompt = () => {
    const result = cell.querySelector('.jp-OutputArea-executeResult');
    return result && result.textContent.includes('42') ? result.querySelector('.jp-OutputPrompt').textContent : '';
  };
  const before = prompt();
  document.addEventListener('keydown', () => { timer.start = performance.now(); }, {capture: true, once: true});
  const observer = new MutationObserver(() => {
    const now = prompt();
    if (timer.start && now && now !== before) {
      timer.end = performance.now();
      observer.disconnect();
    }
  });
  observer.observe(cell, {childList: true, subtree: true, characterData: true});
}
"""


# --- report -----------------------------------------------------------------------------------------------------


def ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.1f}"


def row(name: str, values: list[float], floor: list[float]) -> str:
    ratio = statistics.median(values) / statistics.median(floor)
    return f"| {name} | {ms(values, 50)} | {min(values) * 1000:.1f} | {ms(values, 99)} | {ratio:.2f} |"


def report(rounds: int, interleave: bool, results: dict[str, dict[str, list[float]]],
           load: tuple[float, float, float]) -> list[str]:
    fixed = results["with TCP_NODELAY (ours)"]
    lines = [
        "Sifu + Jupyter Server as processes (the rendered config), nginx with the rendered vhosts in front, one",
        f"keep-alive connection per path, `6*7` executed {rounds} times after {WARM_UP} warm-up rounds, timed from the",
        "execute_request to the kernel's `idle` status (legacy JSON protocol unless the row says v1, which the browser",
        "speaks). ZMQ floor: jupyter_client on the same kernel's connection file. "
        + (f"Rounds interleaved: one of each path in turn, so all see the same load; {SETTLE * 1000:.0f} ms between rounds." if interleave
           else "Rounds sequential: all of one path, then the next."),
        "Chromium: one page per server, rounds alternating between them, timed in the page.",
        "Ours is the rendered config, whose kernel websocket has TCP_NODELAY (sifu/kernel_latency.py); the baseline is",
        "a second Jupyter on the same root with jupyter_server's own connection class (Nagle's algorithm left on).",
        f"Load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 shared cores).",
        "",
        "| server | path | p50 ms | min ms | p99 ms | p50 / ZMQ floor |",
        "|---|---|---:|---:|---:|---:|",
    ]
    labels = {"nginx": "websocket through nginx", "nginx_paused": f"websocket through nginx, each round after a {PAUSE} s pause",
              "nginx_v1": f"websocket through nginx, {V1_PROTOCOL}",
              "direct": "websocket, app port directly", "zmq": "ZMQ floor (jupyter_client)",
              "browser": "Chromium: Shift+Enter to the output in the page, through nginx",
              "browser_wire": "Chromium: of which request sent to result frame received (page clock)"}
    for server, paths in results.items():
        for path, values in paths.items():
            lines.append(row(f"{server} | {labels[path]}", values, paths["zmq"]))
    lines.append("")
    if "without (jupyter_server default)" in results:
        before = results["without (jupyter_server default)"]
        lines.append(f"Without the fix, through nginx: round trip / ZMQ floor = "
                     f"{statistics.median(before['nginx']) / statistics.median(before['zmq']):.2f}.")
        if "browser" in before and "browser" in fixed:
            lines.append(f"Chromium, Shift+Enter to output (p50): {ms(before['browser'], 50)} ms without the fix, "
                         f"{ms(fixed['browser'], 50)} ms with it.")
    lines.append(f"- round trip / ZMQ floor: {statistics.median(fixed['nginx']) / statistics.median(fixed['zmq']):.2f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--no-baseline", action="store_true", help="skip the second Jupyter without the fix")
    parser.add_argument("--no-browser", action="store_true", help="skip Chromium (Shift+Enter to output)")
    parser.add_argument("--sequential", action="store_true",
                        help="all rounds of one path, then the next (default: one round of each path in turn)")
    args = parser.parse_args()
    username = "alice"
    with process_stack("roundtrip") as (exits, workdir, stack):
        targets = [Target("with TCP_NODELAY (ours)", stack.jupyter, workdir / "jupyter" / "runtime")]
        if not args.no_baseline:
            baseline_dir = workdir / "baseline"
            baseline_dir.mkdir()
            baseline = start_jupyter(baseline_dir, stack.root, stack.secret, stack.sifu.url,
                                     frame_ancestors=stack.devlms.url, extra_config=UPSTREAM_CONNECTION)
            exits.callback(baseline.stop)
            targets.append(Target("without (jupyter_server default)", baseline, baseline_dir / "jupyter" / "runtime"))
        urls = {}
        for i, target in enumerate(targets):
            urls = put_nginx_in_front(exits, workdir, str(i), stack.sifu.url, target.jupyter.url)
            target.public_url = urls["jupyter"]
        cookies = sign_in(stack, urls["sifu"], username)
        for target in targets:
            start_kernel(target, cookies, username)
            exits.callback(target.session.close)
        load = os.getloadavg()
        results = {target.name: measure(target, args.rounds, not args.sequential) for target in targets}
        if not args.no_browser and Path(CHROMIUM).exists():
            for name, paths in browser_times(targets, cookies, username, args.rounds, workdir / "browser-home").items():
                results[name].update(paths)
    record("kernel round trip: websocket through nginx and direct vs the ZMQ floor (bench/kernel_roundtrip.py)",
           report(args.rounds, not args.sequential, results, load))

if __name__ == "__main__":
    main()

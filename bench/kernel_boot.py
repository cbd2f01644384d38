"""Kernel boot inside the app container: the broker's exec path against its zygote (sifu/kernel_zygote.py), as CPU
seconds and wall seconds from asking for the kernel to its kernel_info reply (issue 14, item 2).

Not a bench of its own: bench/click_to_result.py runs it in its app container after the HTTP rows. The CPU figure
is the kernel process's user+system time when its kernel_info reply arrives (for the exec path it includes the
root launcher, sifu.kernel_limits, which the same process exec'd from): it does not depend on the load of the shared
cores; the wall figure does. As root in the container, for a uid no student has, both paths as the broker runs them
(sifu.kernel_broker.kernel_command and kernel_env; Zygote.start), ipc transport in a directory of that uid's,
taking turns kernel by kernel.
"""

from __future__ import annotations

import json
import statistics

# Run as root in the app container: `python -c SCRIPT ROUNDS`; prints one JSON line last.
SCRIPT = r'''
import json, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path
from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file
from sifu import kernel_broker
from sifu.kernel_limits import KERNEL_UMASK
from sifu.kernel_zygote import Zygote
from sifu.uids import UID_LIMIT

UID = UID_LIMIT  # allocated to no student
work = Path(tempfile.mkdtemp(dir="/run"))
os.chmod(work, 0o755)
os.chown(work, UID, UID)
site = kernel_broker.Site(work, work, "", 0, 0, 0, sys.executable)
zygote = Zygote(sys.executable, kernel_broker.zygote_env())


def boot(path, i):
    cf, _ = write_connection_file(str(work / f"kernel-{path}{i}.json"), transport="ipc", ip=str(work / f"{path}{i}"))
    os.chmod(cf, 0o644)
    env = kernel_broker.kernel_env({"PATH": os.environ["PATH"]}, work)
    started = time.perf_counter()
    if path == "zygote":
        process = zygote.start({"uid": UID, "cwd": str(work), "connection_file": cf, "env": env})
    else:
        process = subprocess.Popen(kernel_broker.kernel_command(site, cf, UID), cwd=work, env=env, start_new_session=True,
                                   umask=KERNEL_UMASK, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
    client = BlockingKernelClient(connection_file=cf)
    client.load_connection_file()
    client.start_channels()
    client.kernel_info()
    client.get_shell_msg(timeout=120)
    wall = time.perf_counter() - started
    fields = open(f"/proc/{process.pid}/stat").read().rpartition(")")[2].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    client.stop_channels()
    os.killpg(process.pid, 9)
    process.wait()
    return wall, cpu


found = {"exec": [], "zygote": []}
for i in range(int(sys.argv[1])):
    for path in (("exec", "zygote") if i % 2 else ("zygote", "exec")):
        found[path].append(boot(path, i))
zygote.stop()
shutil.rmtree(work)
print(json.dumps(found))
'''


def measure(container, rounds: int = 8) -> dict[str, dict[str, float]]:
    """{"exec"|"zygote": {"wall": median s, "cpu": median s}} in `container` (the app container)."""
    code, out = container.exec_run(["python", "-c", SCRIPT, str(rounds)])
    text = out.decode(errors="replace")
    assert code == 0, text
    found = json.loads([line for line in text.splitlines() if line.startswith("{")][-1])
    return {path: {"wall": statistics.median(w for w, _ in boots), "cpu": statistics.median(c for _, c in boots)}
            for path, boots in found.items()}


def report(figures: dict[str, dict[str, float]], rounds: int) -> list[str]:
    exec_, zygote = figures["exec"], figures["zygote"]
    return [f"Kernel boot in the app container, asking for the kernel to its kernel_info reply, median of {rounds} each "
            f"(bench/kernel_boot.py): exec'd (the broker's old path) {exec_['cpu']:.3f} s CPU, {exec_['wall']:.3f} s wall; "
            f"forked from the zygote {zygote['cpu']:.3f} s CPU, {zygote['wall']:.3f} s wall "
            f"(CPU {zygote['cpu'] / exec_['cpu']:.2f}×, wall {zygote['wall'] / exec_['wall']:.2f}×; the CPU does not "
            "depend on the load)."]

"""Our side of the capacity benches through the real app image (issue 14, items 2 and 3).

The end-to-end stack (tests/support/e2e_stack.py) on the bench's private dockerd: the app container (supervisord:
Sifu with its workers, and Jupyter, whose kernels start through the root kernel broker, each as the student's own
uid), nginx with the rendered vhosts in front, devlms as the LMS. The image is built by
tests/support/app_image.built_app_image. A student goes the XBlock's way as in bench/capacity/ours.py:
OursStudent takes either side (it needs devlms, sifu_url and jupyter_url, which both have).
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from bench.capacity.ours import nginx_master  # noqa: E402
from bench.capacity.proctree import container_processes, descendants  # noqa: E402
from tests.support.e2e_stack import E2EStack, start_e2e_stack  # noqa: E402


@dataclass
class OursInImage:
    stack: E2EStack
    nginx_pid: int

    @property
    def devlms(self):
        return self.stack.devlms

    @property
    def sifu_url(self) -> str:
        return self.stack.sifu_url

    @property
    def jupyter_url(self) -> str:
        return self.stack.jupyter_url

    def pids(self) -> list[int]:
        """The instance's processes: the app container's (supervisord, Sifu, Jupyter, the broker, the kernels) with
        its containerd shim, and nginx. Not dockerd and containerd: an instance runs them whatever it serves (as
        JupyterHub's local-process side does not count the OS); devlms stands in for the LMS."""
        init = self.stack.container().attrs["State"]["Pid"]
        return container_processes(init) + descendants([self.nginx_pid])


def start_ours_in_image(exits: ExitStack, built, client, workdir: Path, students: int) -> OursInImage:
    """Everything is stopped when `exits` closes (the container removed, nginx and devlms stopped)."""
    stack = start_e2e_stack(exits, built, client, workdir, students=students)
    return OursInImage(stack, nginx_master(workdir))

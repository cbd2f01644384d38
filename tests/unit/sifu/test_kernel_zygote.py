"""The kernel broker's zygote (sifu/kernel_zygote.py): what a forked kernel's environment gains, a child refused
before its kernel starts, and a zygote that died."""

from __future__ import annotations

import os
import sys

import pytest

from sifu import kernel_broker
from sifu.kernel_zygote import Zygote, ZygoteGone, startup_locale

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the zygote runs as root (it becomes each student)")


def test_under_the_c_locale_a_kernel_gets_the_utf8_ctype_an_interpreter_start_would_add():
    assert startup_locale({}) == startup_locale({"LANG": "C"}) == startup_locale({"LC_CTYPE": "POSIX"}) == {"LC_CTYPE": "C.UTF-8"}
    assert startup_locale({"LANG": "en_US.UTF-8"}) == startup_locale({"LC_ALL": "C"}) == {}


@as_root
def test_a_child_that_cannot_build_its_walls_says_why_and_the_zygote_forks_the_next(tmp_path):
    zygote = Zygote(sys.executable, kernel_broker.zygote_env())
    try:
        for _ in range(2):
            with pytest.raises(OSError) as refused:
                zygote.start({"uid": 200_001, "cwd": str(tmp_path / "gone"), "connection_file": "x", "env": {}})
            assert refused.value.strerror == "No such file or directory"
        assert zygote.alive
    finally:
        zygote.stop()


@as_root
def test_once_the_zygote_is_gone_starting_says_so(tmp_path):
    zygote = Zygote(sys.executable, kernel_broker.zygote_env())
    zygote.process.kill()
    zygote.process.wait()
    with pytest.raises(ZygoteGone):
        zygote.start({"uid": 200_001, "cwd": str(tmp_path), "connection_file": "x", "env": {}})
    zygote.stop()

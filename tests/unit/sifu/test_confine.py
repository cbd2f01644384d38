"""sifu.confine's capability arithmetic and the kernel broker's environment allow-list (the container tests in
tests/integration/image/test_confinement.py show both at work in the real image)."""

from __future__ import annotations

import pytest

from sifu import confine, launch


def test_the_container_keeps_exactly_the_brokers_capabilities():
    mask = confine.mask_of(confine.CONTAINER_CAPABILITIES)
    assert mask == 0x1FB  # CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
    assert confine.names_of(mask) == sorted(confine.CONTAINER_CAPABILITIES)
    for dangerous in ("SYS_ADMIN", "NET_RAW", "MKNOD", "SETFCAP", "SYS_PTRACE", "NET_ADMIN", "SYS_CHROOT"):
        assert not mask & confine.mask_of([dangerous])


def test_an_unknown_capability_is_refused():
    with pytest.raises(confine.ConfineError, match="unknown capability 'SYS_EVERYTHING'"):
        confine.mask_of(["SYS_EVERYTHING"])


def test_the_status_masks_are_read_from_proc(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapInh:\t0000000000000000\nCapPrm:\t00000000000001fb\nCapEff:\t00000000000001fb\n"
                      "CapBnd:\t00000000000001fb\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n")
    assert confine.status_masks(str(status)) == {"CapInh": 0, "CapPrm": 0x1FB, "CapEff": 0x1FB, "CapBnd": 0x1FB,
                                                 "CapAmb": 0, "NoNewPrivs": 1}


def test_the_command_line_needs_a_command():
    with pytest.raises(SystemExit):
        confine.main(["--keep", "KILL"])


def test_the_kernel_broker_gets_no_secret():
    supervisord = {"PATH": "/opt/venv/bin:/usr/bin", "LANG": "C.UTF-8", "HOME": "/root", "SIFU_SECRET_KEY": "k" * 40,
                   "SIFU_SERVICE_TOKEN": "t", "EDX_OAUTH2_CLIENT_SECRET": "s", "RDS_PASSWORD": "p",
                   "SIFU_FRAME_ANCESTORS": "https://lms", "JUPYTER_RUNTIME_DIR": "/x", "AWS_SECRET_ACCESS_KEY": "a"}
    assert launch.program_environment("kernel-broker", supervisord) == {
        "PATH": "/opt/venv/bin:/usr/bin", "LANG": "C.UTF-8", "HOME": "/root"}
    assert launch.UMASKS["kernel-broker"] == 0o022

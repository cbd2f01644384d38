"""sifu/supervise.py: supervisord starts the programs at its loop's first pass, not after a one-second poll.

A real supervisord loop with a real program: each poll records its timeout and whether the program had been
started by then; the loop is ended at the second poll and the program killed and reaped by its pid.
"""

from __future__ import annotations

import os
import signal

import pytest
from supervisor.medusa import asyncore_25 as asyncore
from supervisor.options import ServerOptions
from supervisor.states import ProcessStates

from sifu import supervise

SUPERVISORD_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR2)


def supervisord_options(tmp_path) -> ServerOptions:
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        "[supervisord]\nnodaemon=true\nlogfile=/dev/null\n"
        f"pidfile={tmp_path}/supervisord.pid\n"
        "[program:napper]\ncommand=/bin/sleep 60\nstartsecs=0\n"
    )
    options = ServerOptions()
    options.realize(["--configuration", str(conf), "--nodaemon"])
    options.first, options.test = True, False  # as supervisord.main sets them
    return options


def test_the_first_poll_does_not_wait_and_programs_start_after_it(tmp_path):
    options = supervisord_options(tmp_path)
    supervisor = supervise.Supervisor(options)
    polls: list[tuple[float, bool]] = []
    real_poll = options.poller.poll

    def recording_poll(timeout):
        process = supervisor.process_groups["napper"].processes["napper"]
        polls.append((timeout, process.get_state() != ProcessStates.STOPPED))
        if len(polls) == 2:
            raise asyncore.ExitNow
        return real_poll(timeout)

    options.poller.poll = recording_poll
    handlers = {sig: signal.getsignal(sig) for sig in SUPERVISORD_SIGNALS}
    try:
        with pytest.raises(asyncore.ExitNow):
            supervisor.main()
    finally:
        for sig, handler in handlers.items():  # supervisord installs its own; pytest keeps its
            signal.signal(sig, handler)
        pid = supervisor.process_groups["napper"].processes["napper"].pid if supervisor.process_groups else 0
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    # The first poll returns at once and the program is started right after it; later polls are supervisord's own.
    assert polls == [(0, False), (1, True)]

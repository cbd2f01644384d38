"""`python -m sifu.supervise [supervisord's options]`: supervisord, without its one-second wait before it starts
any program (the container's CMD; the options are supervisord's own).

supervisord's main loop polls its sockets with a 1 s timeout *before* it first starts the programs, so every
container start spent a whole idle second between "supervisord started" and "spawned: 'sifu'". Upstream fixed
this (Supervisor/supervisor#1700, merged 2025-10: the first poll does not wait), but no release has it yet
(4.3.0 is from 2025-08). This carries the fix: the first poll of the loop returns at once; every later poll,
and so every tick, restart back-off and stop, is supervisord's own. With a release that has the fix this is a
no-op and can go: CMD back to `supervisord`.
"""

from __future__ import annotations

import sys

from supervisor import supervisord


class Supervisor(supervisord.Supervisor):
    def runforever(self) -> None:
        poller = self.options.poller
        poll = poller.poll

        def first_poll(_timeout: float):
            poller.poll = poll  # from here on, supervisord's own polls
            return poll(0)

        poller.poll = first_poll
        super().runforever()


def main() -> None:
    supervisord.Supervisor = Supervisor  # supervisord.go() builds the class by this module-level name
    supervisord.main()


if __name__ == "__main__":
    sys.exit(main())

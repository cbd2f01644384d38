"""The tests' process helpers are the sandbox's (sandbox/processes.py): one free_port, one stop."""

from sandbox.processes import free_port, running, stop, wait_for_port

__all__ = ["free_port", "running", "stop", "wait_for_port"]

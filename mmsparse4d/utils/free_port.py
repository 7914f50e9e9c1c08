"""A TCP port free on this machine, for a process group's rendezvous on one host.

``python -m mmsparse4d.utils.free_port`` prints one (``tools/dist_train.sh`` and
``tools/dist_test.sh`` take it when ``PORT`` is not set).
"""

import socket


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now (the system's choice; another process may
    take it before it is bound again, which torchrun then reports)."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


if __name__ == '__main__':
    print(free_port())

"""How a process of a finished distributed run ends: it waits for the others, then leaves
without the interpreter's teardown.

Tearing a gloo process group down in Python is unsafe with torch's own code. The group's
destructor joins gloo's worker threads while the interpreter lock is held, and a worker
thread that is releasing a finished collective (its tensors are Python objects) needs that
lock: the process hangs for good. It was seen as a 2-process CPU run of
``benchmark_scaling.py`` that waited until its timeout, the main thread in
``~ProcessGroupGloo`` joining a thread that waited for the lock in ``~AsyncBarrierWork``,
reached when a ``DistributedDataParallel`` model's reducer (which holds the group) was
freed. Earlier, a loaded CPU machine saw such a teardown abort ('terminate called without
an active exception', torchrun then reporting a failed run after the work was written). So
a process ends with ``os._exit`` after a barrier: the group is never destroyed (the
operating system frees its sockets, and every process has passed the barrier), and no
destructor runs.
"""

import logging
import os
import sys


def wait_for_other_processes() -> bool:
    """Waits until every process of the run reaches this point. Returns whether there is
    a process group (False: a single process, nothing to wait for)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return False
    dist.barrier()
    return True


def exit_distributed_process() -> None:
    """Ends this process with exit status 0 without the interpreter's teardown (logs,
    stdout and stderr flushed first). Call it after ``wait_for_other_processes`` and after
    everything the process writes is closed."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

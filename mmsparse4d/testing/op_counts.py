"""How many tensor operations a block runs: on a GPU each computing one is at least one kernel
launch, so the count measures a step's launch overhead on a machine without one."""

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from torch.utils._python_dispatch import TorchDispatchMode

# Operations that allocate without computing: no kernel on a GPU.
ALLOCATIONS = frozenset(
    {
        'empty.memory_format',
        'empty_strided.default',
        'new_empty.default',
        'new_empty_strided.default',
        'empty_like.default',
    }
)


class _CountOperations(TorchDispatchMode):
    def __init__(self, counts: Counter):
        super().__init__()
        self.counts = counts

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.__name__
        if not func.is_view and name not in ALLOCATIONS:
            self.counts[name] += 1
        return func(*args, **(kwargs or {}))


@contextmanager
def computing_operations() -> Iterator[Counter]:
    """Count, per aten operation, the operations inside the block that compute (views and
    allocations aside), autograd's backward included."""
    counts: Counter = Counter()
    with _CountOperations(counts):
        yield counts


def operation_table(counts: Counter, steps: int, rows: int = 10) -> str:
    """The total per step and the most frequent operations."""
    lines = [f'{sum(counts.values()) / steps:.0f} computing operations per step; the most:']
    for name, count in counts.most_common(rows):
        lines.append(f'{count / steps:8.1f}  {name}')
    return '\n'.join(lines)


__all__ = ['computing_operations', 'operation_table']

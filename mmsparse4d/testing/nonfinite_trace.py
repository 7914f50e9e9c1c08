"""Where a non-finite value first appears in a training step, forward or backward.

Mixed-precision training skips every step whose gradients overflow; if steps keep being
skipped whatever the loss scale, some value is NaN (or inf independent of the scale) and
the question is which module makes it. ``NonFiniteTrace`` records, per step, the first
module (in execution order) whose forward output is non-finite and the first module whose
output receives a non-finite gradient in the backward pass (backward runs from the loss
towards the inputs, so this is the module closest to the loss whose gradient went bad: the
op that produced it sits between this module's output and its consumers).

Every module output is checked, which reads device values on the host: a diagnostic, not
something to leave on during training.
"""

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class NonFiniteEvent:
    """One non-finite tensor: where (module name, output index) and what (NaN or inf)."""

    module: str
    output: int
    kind: str  # 'nan', 'inf' or 'nan+inf'

    def __str__(self) -> str:
        return f'{self.module or "<model>"}[{self.output}] {self.kind}'


def nonfinite_kind(tensor: Tensor) -> str | None:
    """'nan', 'inf', 'nan+inf' or None for a finite (or non-floating) tensor."""
    if not tensor.is_floating_point():
        return None
    nan, inf = bool(torch.isnan(tensor).any()), bool(torch.isinf(tensor).any())
    if not (nan or inf):
        return None
    return '+'.join(kind for kind, found in (('nan', nan), ('inf', inf)) if found)


class NonFiniteTrace:
    """Context manager over a model's forward and backward passes.

    After the step, ``forward`` and ``backward`` hold the first ``NonFiniteEvent`` of each
    pass (None when everything stayed finite); ``reset`` clears them for the next step.

    Args:
        model: its named submodules are watched (the root module too, as ``''``).
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.forward: NonFiniteEvent | None = None
        self.backward: NonFiniteEvent | None = None
        self._handles = []

    def reset(self) -> None:
        self.forward = self.backward = None

    def __enter__(self) -> 'NonFiniteTrace':
        for name, module in self.model.named_modules():
            self._handles.append(module.register_forward_hook(self._forward_hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _forward_hook(self, name: str):
        def hook(module, inputs, output):
            for index, tensor in enumerate(_tensors(output)):
                if self.forward is None:
                    kind = nonfinite_kind(tensor.detach())
                    if kind is not None:
                        self.forward = NonFiniteEvent(name, index, kind)
                if tensor.requires_grad:
                    tensor.register_hook(self._gradient_hook(name, index))

        return hook

    def _gradient_hook(self, name: str, index: int):
        def hook(gradient):
            if self.backward is None and gradient is not None:
                kind = nonfinite_kind(gradient)
                if kind is not None:
                    self.backward = NonFiniteEvent(name, index, kind)

        return hook


def _tensors(output) -> list[Tensor]:
    """The tensors of a module's output (a tensor, or nested tuples, lists and dicts)."""
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in _tensors(item)]
    if isinstance(output, dict):
        return [t for item in output.values() for t in _tensors(item)]
    return []

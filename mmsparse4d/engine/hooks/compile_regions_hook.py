"""Compile a model's repeated regions with ``torch.compile`` before training.

The training step of the small recipes is bound by the host: on the H100 the GPU is busy
for 81 ms of a 209 ms step (docs/performance.md, Training step), the rest being Python and one
kernel launch per operator. Compiling the whole ``train_step`` would break its graph at every
host decision (the Hungarian matching, the instance bank's frame checks). Compiling the
regions instead (the backbone, the neck, the anchor encoder and every operation of the head)
gives graphs without breaks: fused kernels in the forward and the backward, the matching and
the bank left as they are. ``nn.Module.compile`` compiles in place, so parameter names and
checkpoints are unchanged.
"""

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import nn

from ...registry import HOOKS

DEFAULT_REGIONS = ('img_backbone', 'img_neck', 'depth_branch', 'head.anchor_encoder', 'head.layers')


def compile_regions(
    model: nn.Module, regions=DEFAULT_REGIONS, backend: str = 'inductor', mode: str | None = None
) -> list[str]:
    """``torch.compile`` each named sub-module of ``model`` in place (a ``ModuleList`` entry by
    entry). A name the model holds as None (a detector without a depth branch) is skipped; a
    name it lacks is an error. Returns the compiled modules' names."""
    compiled = []
    for name in regions:
        module = _submodule(model, name)
        if module is None:
            continue
        children = (
            [(f'{name}.{index}', child) for index, child in enumerate(module)]
            if isinstance(module, nn.ModuleList)
            else [(name, module)]
        )
        for child_name, child in children:
            child.compile(backend=backend, mode=mode)
            compiled.append(child_name)
    return compiled


def _submodule(model: nn.Module, name: str) -> nn.Module | None:
    """The sub-module, or None where the model sets it to None (an optional part)."""
    parent_name, _, leaf = name.rpartition('.')
    try:
        parent = model.get_submodule(parent_name) if parent_name else model
    except AttributeError:
        parent = None
    if parent is None or not hasattr(parent, leaf):
        raise ValueError(f'compile_regions: {type(model).__name__} has no {name!r}')
    return getattr(parent, leaf)


@HOOKS.register_module()
class CompileRegionsHook(Hook):
    """Compiles ``regions`` of the runner's model before the first training iteration.

    Args:
        backend: a ``torch.compile`` backend ('inductor'; 'aot_eager' traces without code
            generation, for tests).
        mode: ``torch.compile`` mode (None: the default).
        regions: dotted sub-module names; a ``ModuleList`` is compiled entry by entry.
    """

    priority = 'VERY_LOW'  # after the hooks that move or wrap the model

    def __init__(self, backend: str = 'inductor', mode: str | None = None, regions=DEFAULT_REGIONS):
        self.backend, self.mode, self.regions = backend, mode, tuple(regions)

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        names = compile_regions(model, self.regions, self.backend, self.mode)
        runner.logger.info(
            f'CompileRegionsHook: compiled {len(names)} regions with '
            f'{self.backend} ({", ".join(names)})'
        )

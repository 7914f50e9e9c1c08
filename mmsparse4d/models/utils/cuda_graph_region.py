"""A block of a training step run as two CUDA graphs: its forward and its backward.

A small model's training step is bound by the host: each of its thousands of small kernels
costs more to launch than to run (docs/performance.md, "Training step"). Captured once, a
block's forward is one graph replay and its backward another, whatever the number of
kernels inside; the rest of the step (the matching on the host among it) stays eager.

``CudaGraphRegion`` captures a function of tensors (nested in lists, tuples and dicts;
other leaves are constants) once per input signature: the structure, the constants, each
tensor's shape, dtype and ``requires_grad``, the autocast state. A call copies the inputs
into the captured graph's own input tensors, replays the forward graph and returns its output
tensors; the backward copies the incoming gradients in, replays the backward graph and hands
back the gradients of the inputs and of the owning module's parameters.

What a captured function must do: neither wait for the device nor copy from the host
(``mmsparse4d/testing/capture_safety.py`` finds both on a CPU), and read no state that
changes between calls except through its tensor arguments and the module's parameters
(updated in place by the optimizer). Its Python side effects, and its in-place updates of
buffers (batch norms' running statistics), happen ``warmup`` + 1 times at a capture and
then only as replays: return what the caller needs.

What a caller must do: use the outputs (they are the graph's own tensors) before the next
call of the same signature, and run the backward of a call once, before the next call
(one forward, one backward, as a training step does; a backward out of that order is
refused). Gradient accumulation over several calls is safe: the parameters' gradients, and
those of leaf tensors passed in, are handed back in fresh memory each call. A parameter
reached only through outputs that got no gradient gets a zero gradient, not None. Settings
that change kernels without changing the signature (a dropout rate, deterministic
algorithms, TF32) must not change after a capture; moving the parameters or buffers does
no harm (the graphs are captured again).
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from mmengine.logging import print_log
from torch import Tensor, nn
from torch.utils._pytree import tree_flatten, tree_unflatten


@dataclass
class _Captured:
    """One signature's graphs and the tensors they read and write."""

    forward_graph: torch.cuda.CUDAGraph
    backward_graph: torch.cuda.CUDAGraph
    inputs: list[Tensor]  # the graph's input tensors, one per tensor argument
    output_leaves: list  # the outputs' leaves: an index into `outputs`, or a constant
    output_spec: object
    outputs: list[Tensor]  # distinct output tensors
    differentiable: list[bool]  # per output: required a gradient at the capture
    grad_outputs: list[Tensor | None]  # per output: where its gradient is copied
    input_grads: list[Tensor | None]  # per input: its gradient (None: none)
    param_grads: dict = field(default_factory=dict)  # dtype -> (flat gradient, [(index, shape)])
    params: tuple = ()
    leaf_inputs: list[bool] = field(default_factory=list)  # per input: a leaf needing a gradient
    generation: int = 0  # forward replays so far: a backward must follow its own forward


# Regions capturing on this thread (their warm-up passes included): a region called inside
# another's capture runs eagerly and becomes part of that capture, where its own graphs
# would hold the outer region's parameter aliases instead of the parameters.
_capture_state = threading.local()


def _capturing() -> bool:
    return getattr(_capture_state, 'depth', 0) > 0


def aliased_parameters(module: nn.Module, aliases: dict[str, Tensor]):
    """A context in which ``module``'s parameters named in ``aliases`` are those tensors
    (a submodule reachable by several paths, tied weights included), restored on exit
    however it exits. torch.func.functional_call's own mechanism, for any method."""
    # Imported here so that a torch without it fails a capture, not the package.
    from torch.nn.utils.stateless import _reparametrize_module

    # stack_weights: restore in reverse order, or a module listed twice keeps the aliases.
    return _reparametrize_module(module, aliases, tie_weights=True, stack_weights=True)


class _Replay(torch.autograd.Function):
    @staticmethod
    def forward(ctx, captured: _Captured, *inputs_and_params):
        for static, value in zip(captured.inputs, inputs_and_params, strict=False):
            if static.data_ptr() != value.data_ptr():
                static.copy_(value)
        captured.forward_graph.replay()
        captured.generation += 1
        ctx.captured, ctx.generation = captured, captured.generation
        ctx.set_materialize_grads(False)
        outputs = tuple(output.detach() for output in captured.outputs)
        ctx.mark_non_differentiable(
            *(
                out
                for out, differentiable in zip(outputs, captured.differentiable, strict=True)
                if not differentiable
            )
        )
        return outputs

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grads):
        captured: _Captured = ctx.captured
        if ctx.generation != captured.generation:
            raise RuntimeError(
                'CudaGraphRegion: a backward after another forward of the same graphs (its '
                'saved activations are overwritten); run each backward before the next call'
            )
        captured.generation += 1  # a second backward of the same call is refused too
        for static, grad in zip(captured.grad_outputs, grads, strict=True):
            if static is None:
                continue
            if grad is None:
                static.zero_()
            elif static.data_ptr() != grad.data_ptr():
                static.copy_(grad)
        captured.backward_graph.replay()
        # A leaf's gradient may be kept as its .grad: in fresh memory, as the parameters'.
        input_grads = [
            None if g is None else g.detach().clone() if leaf else g.detach()
            for g, leaf in zip(captured.input_grads, captured.leaf_inputs, strict=True)
        ]
        param_grads: list[Tensor | None] = [None] * len(captured.params)
        # The parameters' gradients in fresh memory (one copy per dtype): autograd may keep
        # them as the parameters' .grad, which the next replay must not overwrite.
        for flat, slots in captured.param_grads.values():
            fresh = flat.clone()
            offset = 0
            for index, shape in slots:
                size = shape.numel()
                param_grads[index] = fresh[offset : offset + size].view(shape)
                offset += size
        return (None, *input_grads, *param_grads)


class CudaGraphRegion:
    """Runs ``function`` through CUDA graphs of its forward and backward, captured once per
    input signature, where it can; eagerly, said once in the log, where it cannot.

    Args:
        name: what the log calls the block.
        max_graphs: signatures captured at most; a further one runs eagerly (logged once),
            as each capture keeps its own memory for the block's activations.
        warmup: eager calls (forward and backward) on a side stream before a capture,
            which let the libraries make their handles and plans outside it.
    """

    def __init__(self, name: str, max_graphs: int = 8, warmup: int = 2):
        if max_graphs < 1 or warmup < 1:
            raise ValueError(
                f'CudaGraphRegion: max_graphs and warmup must be >= 1, got {max_graphs} and '
                f'{warmup}'
            )
        self.name, self.max_graphs, self.warmup = name, max_graphs, warmup
        self._captured: dict = {}
        self._param_ptrs: tuple | None = None
        self._told: set[str] = set()
        self.capture_seconds = 0.0

    @property
    def num_graphs(self) -> int:
        """Signatures captured so far (each a forward and a backward graph)."""
        return len(self._captured)

    def __deepcopy__(self, memo):
        # Graphs belong to the tensors they were captured on: a copy starts empty.
        return CudaGraphRegion(self.name, self.max_graphs, self.warmup)

    def __getstate__(self):
        return {'name': self.name, 'max_graphs': self.max_graphs, 'warmup': self.warmup}

    def __setstate__(self, state):
        self.__init__(**state)

    def reset(self) -> None:
        """Drop every captured graph (and its memory)."""
        self._captured.clear()
        self._param_ptrs = None

    def __call__(self, function: Callable, module: nn.Module, *args):
        """``function(*args)`` (``module``'s parameters are those it uses) through the
        graphs of the signature of ``args``."""
        if not module.training or not torch.is_grad_enabled():
            return function(*args)  # inference: the graphs are for training steps
        leaves, spec = tree_flatten(args)
        tensors = [leaf for leaf in leaves if isinstance(leaf, Tensor)]
        reason = self._why_eager(tensors)
        if reason is not None:
            self._tell(reason, f'{self.name}: runs eagerly, not as CUDA graphs: {reason}')
            return function(*args)
        parameters = list(module.parameters())
        ptrs = tuple((t.data_ptr(), t.dtype) for t in (*parameters, *module.buffers()))
        if ptrs != self._param_ptrs:
            if self._captured:
                print_log(
                    f'{self.name}: the parameters or buffers moved; capturing the CUDA graphs '
                    'again',
                    'current',
                )
            self.reset()
            self._param_ptrs = ptrs
        key = (self._signature(leaves, spec, tensors), tuple(m.training for m in module.modules()))
        captured = self._captured.get(key)
        if captured is None:
            if len(self._captured) >= self.max_graphs:
                if 'full' not in self._told:  # the message's work once, not every step
                    self._tell(
                        'full',
                        f'{self.name}: {self.max_graphs} input signatures captured '
                        '(max_graphs); further ones run eagerly. They differ in '
                        f'{signature_differences([*self._captured, key])}',
                    )
                return function(*args)
            started = time.perf_counter()
            named_params = {n: p for n, p in module.named_parameters() if p.requires_grad}
            _capture_state.depth = getattr(_capture_state, 'depth', 0) + 1
            try:
                with torch.cuda.device(tensors[0].device):
                    captured = self._capture(function, module, leaves, spec, tensors, named_params)
            finally:
                _capture_state.depth -= 1
            self._captured[key] = captured
            seconds = time.perf_counter() - started
            self.capture_seconds += seconds
            print_log(
                f'{self.name}: captured CUDA graphs for input signature {len(self._captured)} '
                f'in {seconds:.1f} s',
                'current',
            )
        outputs = _Replay.apply(captured, *tensors, *captured.params)
        out_leaves = [
            outputs[leaf] if isinstance(leaf, int) else leaf.value
            for leaf in captured.output_leaves
        ]
        return tree_unflatten(out_leaves, captured.output_spec)

    @staticmethod
    def _why_eager(tensors: list[Tensor]) -> str | None:
        if not tensors or not all(t.is_cuda for t in tensors):
            return 'its inputs are not all on a CUDA device'
        if torch.cuda.is_current_stream_capturing() or _capturing():
            return "it is called inside another block's capture (and becomes part of it)"
        return None

    def _tell(self, key: str, message: str) -> None:
        if key not in self._told:
            self._told.add(key)
            print_log(message, 'current')

    @staticmethod
    def _signature(leaves: list, spec, tensors: list[Tensor]) -> tuple:
        constants = tuple(
            (index, type(leaf).__name__, leaf)
            for index, leaf in enumerate(leaves)
            if not isinstance(leaf, Tensor)
        )
        shapes = tuple(
            (tuple(t.shape), t.dtype, t.requires_grad, t.requires_grad and t.is_leaf, t.device)
            for t in tensors
        )
        autocast = (torch.is_autocast_enabled('cuda'), torch.get_autocast_dtype('cuda'))
        return repr(spec), constants, shapes, autocast

    def _capture(self, function, module, leaves, spec, tensors, named_params) -> _Captured:
        inputs = [t.detach().clone().requires_grad_(t.requires_grad) for t in tensors]
        positions = iter(inputs)
        static_leaves = [next(positions) if isinstance(leaf, Tensor) else leaf for leaf in leaves]
        params = tuple(named_params.values())
        # The block runs on leaves that share the parameters' memory (the optimiser's
        # in-place steps reach the graphs) but not their autograd nodes: a parameter's
        # gradient accumulator may already exist on the default stream (made by this step's
        # eager work or another block's replay), and feeding it from the capture stream
        # would make the default stream wait on a capture, which CUDA refuses.
        aliases = {name: p.detach().requires_grad_(True) for name, p in named_params.items()}
        needs_grad = [t for t in inputs if t.requires_grad] + list(aliases.values())
        autocast = dict(
            device_type='cuda',
            dtype=torch.get_autocast_dtype('cuda'),
            enabled=torch.is_autocast_enabled('cuda'),
            # A cast cached outside a capture would be read inside it from memory the
            # graph does not own.
            cache_enabled=False,
        )

        def run():
            with aliased_parameters(module, aliases), torch.autocast(**autocast):
                return tree_flatten(function(*tree_unflatten(static_leaves, spec)))

        def differentiable_outputs(flat):
            return [o for o in flat if isinstance(o, Tensor) and o.requires_grad]

        torch.cuda.synchronize()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.warmup):
                flat, _ = run()
                outs = differentiable_outputs(flat)
                if outs:
                    torch.autograd.grad(
                        outs,
                        needs_grad,
                        grad_outputs=[torch.zeros_like(o) for o in outs],
                        allow_unused=True,
                    )
                del flat, outs
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()

        pool = torch.cuda.graph_pool_handle()
        forward_graph = torch.cuda.CUDAGraph()
        # thread_local: the loader's pin-memory thread may work on the device meanwhile.
        with torch.cuda.graph(forward_graph, pool=pool, capture_error_mode='thread_local'):
            flat, output_spec = run()
        outputs: list[Tensor] = []
        output_leaves: list = []
        seen: dict[int, int] = {}
        for leaf in flat:
            if isinstance(leaf, Tensor):
                if id(leaf) not in seen:
                    seen[id(leaf)] = len(outputs)
                    outputs.append(leaf)
                output_leaves.append(seen[id(leaf)])
            else:
                output_leaves.append(_Constant(leaf))
        differentiable = [o.requires_grad for o in outputs]
        grad_outputs = [torch.empty_like(o) if o.requires_grad else None for o in outputs]
        backward_graph = torch.cuda.CUDAGraph()
        input_grads: list[Tensor | None] = [None] * len(inputs)
        param_grads: dict = {}
        with torch.cuda.graph(backward_graph, pool=pool, capture_error_mode='thread_local'):
            wanted = [o for o in outputs if o.requires_grad]
            grads = (
                torch.autograd.grad(
                    wanted,
                    needs_grad,
                    grad_outputs=[g for g in grad_outputs if g is not None],
                    allow_unused=True,
                )
                if wanted
                else [None] * len(needs_grad)
            )
            grads = iter(grads)
            for index, tensor in enumerate(inputs):
                if tensor.requires_grad:
                    input_grads[index] = next(grads)
            by_dtype: dict = {}
            for index, grad in enumerate(grads):
                if grad is not None:
                    by_dtype.setdefault(grad.dtype, []).append((index, grad))
            for dtype, entries in by_dtype.items():
                flat_grad = torch.cat([grad.reshape(-1) for _, grad in entries])
                param_grads[dtype] = (flat_grad, [(index, grad.shape) for index, grad in entries])
        # The outputs' autograd history (the capture's) is not needed again.
        outputs = [o.detach() for o in outputs]
        return _Captured(
            forward_graph=forward_graph,
            backward_graph=backward_graph,
            inputs=inputs,
            output_leaves=output_leaves,
            output_spec=output_spec,
            outputs=outputs,
            differentiable=differentiable,
            grad_outputs=grad_outputs,
            input_grads=input_grads,
            param_grads=param_grads,
            params=params,
            leaf_inputs=[t.requires_grad and t.is_leaf for t in tensors],
        )


def signature_differences(keys: list, most: int = 4) -> str:
    """What varies among ``CudaGraphRegion`` keys (signature, training flags), in words:
    the tensors whose shapes, dtypes, gradient or leaf flags or devices differ (by their
    position among the call's tensors, with up to ``most`` of the values met), then the
    structure, the constants, the autocast state and the training flags where they
    differ."""
    signatures = [signature for signature, _ in keys]
    parts = []
    if len({s[0] for s in signatures}) > 1:
        parts.append('the structure of the arguments')
    if len({s[1] for s in signatures}) > 1:
        parts.append('the constant arguments')
    same_count = len({len(s[2]) for s in signatures}) == 1
    if not same_count:
        parts.append('the number of tensors')
    else:
        for index in range(len(signatures[0][2])):
            described = []
            fields = ((0, 'shape'), (1, 'dtype'), (2, 'requires_grad'), (3, 'leaf'), (4, 'device'))
            for field, label in fields:
                values = list(dict.fromkeys(s[2][index][field] for s in signatures))
                if len(values) > 1:
                    shown = ', '.join(str(v) for v in values[:most])
                    more = f', ... ({len(values)} in all)' if len(values) > most else ''
                    described.append(f'{label} {shown}{more}')
            if described:
                parts.append(f'tensor {index}: ' + '; '.join(described))
    if len({s[3] for s in signatures}) > 1:
        parts.append('the autocast state')
    if len({training for _, training in keys}) > 1:
        parts.append("the submodules' training flags")
    if not parts:
        return 'nothing (the same signature)'
    shown = parts[: 2 * most]
    if len(parts) > len(shown):
        shown.append(f'{len(parts) - len(shown)} more')
    return ' | '.join(shown)


def run_graphed(region: CudaGraphRegion | None, function: Callable, module: nn.Module, *args):
    """``function(*args)`` through ``region``'s graphs in training; eagerly without a region
    or outside training."""
    return function(*args) if region is None else region(function, module, *args)


@dataclass(frozen=True)
class _Constant:
    """A non-tensor output leaf, returned as captured."""

    value: object


__all__ = ['CudaGraphRegion', 'run_graphed']

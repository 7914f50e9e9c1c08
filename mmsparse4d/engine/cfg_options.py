"""``--cfg-options`` keys checked against the config, so that a typo is an error.

mmengine merges every ``--cfg-options key=value`` into the config, creating keys that do not
exist: ``train_cfgg.max_iters=2`` or ``train_cfg.max_iterz=2`` is ignored silently and the
run goes on with the configured value. The rule applied here, per dotted key:

1. the top-level key must exist in the config;
2. a nested key that exists is fine (list entries by index, ``pipeline.0.scale``);
3. a new key in a dict built by type (``type=...``) must be an argument of that class's (or
   function's) constructor, or the constructor takes ``**kwargs`` or its type cannot be
   resolved here (then nothing is known to compare with); the Runner's data loaders also
   take ``torch.utils.data.DataLoader``'s arguments, and ``optim_wrapper`` its
   ``constructor`` and ``paramwise_cfg``, ``randomness`` and ``env_cfg`` the keys the Runner
   reads, a hook its ``priority``;
4. a new key in any other dict is refused: such dicts are settings whose keys the config
   lists (``env_cfg.mp_cfg``, a stitcher's ``dict(radius=...)``), except those whose keys
   are names the user picks: ``paramwise_cfg.custom_keys`` (parameter names) and
   ``default_hooks`` (hook names; a new hook without a type fails when the Runner builds it).

A constructor that takes ``**kwargs`` accepts any key (mmengine's ``CheckpointHook`` does),
so a typo there still passes: rule 3 knows only what the signature says.

A dict value (from Python: ``{'train_cfg': dict(max_iters=2)}``) is merged key by key, so
its keys are checked the same way, unless it carries ``_delete_=True`` (it replaces the
entry).

A key starting with ``+`` (``+model.head.decoder.track_stitching.min_score=0.3``) is added
without the check: the explicit way to add a key that a rule above refuses.
"""

import difflib
import importlib
import inspect
from collections.abc import Callable

from mmengine.config import Config

from ..utils.input_error import InputError

ADD_PREFIX = '+'
DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
# Keys that mmengine's Runner reads from these entries itself, besides any type's arguments:
# the optimizer-wrapper constructor's, ``set_randomness``'s and ``setup_env``'s.
RUNNER_KEYS = {
    'optim_wrapper': ('constructor', 'paramwise_cfg'),
    'randomness': ('seed', 'diff_rank_seed', 'deterministic'),
    'env_cfg': ('cudnn_benchmark', 'mp_cfg', 'dist_cfg', 'resource_limit'),
}
HOOK_LISTS = ('default_hooks', 'custom_hooks')  # the Runner takes a ``priority`` from each hook
# Dicts whose keys are names the user chooses (parameter-name patterns, hooks), not settings.
FREE_KEYS = ('custom_keys', 'default_hooks')


def _registries() -> list:
    from ..registry import ALL_REGISTRIES

    return list(ALL_REGISTRIES.values())


def _resolve(type_value) -> list[Callable]:
    """Every class or function that ``type_value`` names in mmsparse4d's registries and
    their parents (mmdet3d, mmdet, mmengine); empty if none is known here."""
    if callable(type_value):
        return [type_value]
    if not isinstance(type_value, str):
        return []
    found = []
    for registry in _registries():
        # ``get`` imports mmsparse4d's locations; the parents' classes are found where
        # imported already (importing all of mmdet3d's would need its optional packages).
        target = registry.get(type_value)
        if target is not None and target not in found:
            found.append(target)
    return found


def _arguments(target: Callable) -> set[str] | None:
    """The keyword arguments ``target`` takes; None if it takes any (``**kwargs``) or its
    signature cannot be read."""
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }


def _suggest(key: str, names) -> str:
    close = difflib.get_close_matches(key, sorted(names), n=3, cutoff=0.6)
    return f' (did you mean {" or ".join(close)}?)' if close else ''


def _new_key_refusal(node: dict, key: str, where: str) -> str | None:
    """Why ``key`` may not be added to the dict ``node`` at ``where``; None if it may."""
    if where.rsplit('.', 1)[-1] in FREE_KEYS:
        return None
    accepted = set(RUNNER_KEYS.get(where, ()))
    if where in DATALOADERS:
        from torch.utils.data import DataLoader

        accepted |= _arguments(DataLoader) or set()
    if where.split('.', 1)[0] in HOOK_LISTS and where.count('.') == 1:
        accepted.add('priority')
    if key in accepted:
        return None
    if 'type' in node:
        targets = _resolve(node['type'])
        if not targets:
            return None  # not resolvable here: nothing to compare with
        names = set()
        for target in targets:
            arguments = _arguments(target)
            if arguments is None:
                return None
            names |= arguments
        if key in names:
            return None
        type_name = node['type'] if isinstance(node['type'], str) else node['type'].__name__
        return f'{where} has no key {key!r} and its {type_name} takes no such argument' + (
            _suggest(key, names | set(node) | accepted)
        )
    return f'{where} has no key {key!r}' + _suggest(key, set(node) | accepted)


def _describe(value) -> str:
    text = repr(value)
    return f'{type(value).__name__} {text[:40]}{"..." if len(text) > 40 else ""}'


def _check(
    node, parts: list[str], value, full_key: str, filename: str, walked: tuple[str, ...] = ()
) -> None:
    """Walk ``parts`` from ``node`` (the config as plain containers, reached by the keys
    ``walked``); raise ``InputError`` at the first key the module docstring's rule refuses."""
    for index, part in enumerate(parts):
        where = '.'.join((*walked, *parts[:index]))
        if isinstance(node, (list, tuple)):
            if not part.isdigit() or int(part) >= len(node):
                raise InputError(
                    f'--cfg-options {full_key}: {where} is a list of {len(node)} entries, '
                    f'{part!r} is not an index of it'
                )
            node = node[int(part)]
            continue
        if not isinstance(node, dict):
            raise InputError(
                f'--cfg-options {full_key}: {where} is {_describe(node)}, it has no key {part!r}'
            )
        if part in node:
            node = node[part]
            continue
        if not where:
            refusal = f'the config {filename} has no top-level key {part!r}' + _suggest(part, node)
        else:
            refusal = _new_key_refusal(node, part, where)
            if refusal is None:
                return  # a new key: nothing below it to compare with
        raise InputError(
            f'--cfg-options {full_key}: {refusal}; to add it anyway, write '
            f'{ADD_PREFIX}{full_key}=VALUE'
        )
    if isinstance(value, dict) and isinstance(node, dict) and not value.get('_delete_'):
        if 'type' in value:  # the merged entry is built as the new type
            node = dict(node, type=value['type'])
        for key, item in value.items():
            _check(node, [key], item, f'{full_key}.{key}', filename, (*walked, *parts))


def check_cfg_options(cfg: Config, options: dict) -> dict:
    """Check ``--cfg-options`` (as parsed by mmengine's ``DictAction``) against ``cfg``.

    Args:
        cfg: the loaded config, before the options are merged.
        options: dotted key -> value; a key starting with ``+`` is added unchecked.

    Returns:
        The options to merge, ``+`` removed.

    Raises:
        InputError: naming the first key the module docstring's rule refuses, with close
            matches and the ``+`` form.
    """
    plain = cfg.to_dict()
    filename = cfg.filename or 'the config'
    merged = {}
    for full_key, value in options.items():
        if full_key.startswith(ADD_PREFIX):
            merged[full_key[len(ADD_PREFIX) :]] = value
            continue
        _check(plain, full_key.split('.'), value, full_key, filename)
        merged[full_key] = value
    return merged


# Arguments that reach another function through a type's ``**kwargs``: mmengine's
# CheckpointHook hands its extra keys to ``Runner.save_checkpoint`` (an unknown one fails
# only at the first save, iterations into the run), the OVPKL dataset to mmengine's
# ``BaseDataset``.
FORWARDED_KWARGS = {
    'CheckpointHook': ('mmengine.runner', 'Runner', 'save_checkpoint'),
    'OVPKLDataset': ('mmengine.dataset', 'BaseDataset', '__init__'),
}
# Keys mmengine's builders take out of a typed dict before calling its type, and those
# mmcv's norm-layer builder takes out of a ``norm_cfg``.
BUILDER_KEYS = {'type', '_scope_', '_delete_', 'convert_to_iter_based'}
NORM_BUILDER_KEYS = {'requires_grad'}


def _forwarded_arguments(type_value) -> set[str]:
    name = type_value if isinstance(type_value, str) else getattr(type_value, '__name__', '')
    if name not in FORWARDED_KWARGS:
        return set()
    module, owner, method = FORWARDED_KWARGS[name]
    return _arguments(getattr(getattr(importlib.import_module(module), owner), method)) or set()


def _typed_dict_refusal(node: dict, key: str, where: str) -> str | None:
    """``_new_key_refusal`` for a key a config file wrote in a typed dict: also the keys a
    type's ``**kwargs`` hands on (``FORWARDED_KWARGS``)."""
    forwarded = _forwarded_arguments(node.get('type'))
    if forwarded:
        parameters = inspect.signature(_resolve(node['type'])[0]).parameters.values()
        names = {p.name for p in parameters if p.kind is not inspect.Parameter.VAR_KEYWORD}
        names |= forwarded | {'priority'}
        if key in names:
            return None
        return f'{where} has no argument {key!r}{_suggest(key, names)}'
    return _new_key_refusal({k: v for k, v in node.items() if k != key}, key, where)


def _walk_typed(node, where: str, filename: str, added: frozenset) -> None:
    if isinstance(node, (list, tuple)):
        for index, item in enumerate(node):
            _walk_typed(item, f'{where}.{index}', filename, added)
        return
    if not isinstance(node, dict):
        return
    if 'type' in node or where in DATALOADERS:
        for key in node:
            if key in BUILDER_KEYS or (where.endswith('norm_cfg') and key in NORM_BUILDER_KEYS):
                continue
            if f'{where}.{key}' in added:
                continue
            refusal = _typed_dict_refusal(node, key, where)
            if refusal is not None:
                raise InputError(f'{refusal}: a typo in the config?', filename)
    for key, value in node.items():
        _walk_typed(value, f'{where}.{key}' if where else key, filename, added)


def check_config_keys(cfg: Config, added=()) -> None:
    """Every key of a dict built by type (``type=...``, and the data loaders) must be an
    argument of that type, as rule 3 of the module docstring says for ``--cfg-options``: a
    typo in a config file (``train_cfg=dict(max_iter=4)``) is an ``InputError`` naming the
    key and the file before the Runner starts, not a TypeError after it wrote the work dir,
    or for a checkpoint hook's argument, at the first save. ``added``: dotted keys added on
    purpose (``--cfg-options +KEY=VALUE``), not checked."""
    _walk_typed(cfg.to_dict(), '', cfg.filename or 'the config', frozenset(added))

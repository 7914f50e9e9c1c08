"""The classes a config names in several places, checked to agree before a run.

A config inherits its classes from its base as values, not as references: a config that
sets ``class_names = ('Person', 'Forklift')`` and ``metainfo`` anew still has the base's
six classes in its evaluators and its head (mmengine evaluates the base's expressions when
it reads the base), and trains two classes' labels against a six-class head, scored as six.
With the same names in another order, the dataset's label 3 is the evaluator's class 3 of
another name. Both run without an error; this check refuses them.
"""

from collections.abc import Iterator

from mmengine.config import Config

from ..utils.input_error import InputError

SPLITS = ('train', 'val', 'test')
# The head's class counts: its classification layer's and its target sampler's.
CLASS_COUNT_KEYS = ('num_cls', 'num_classes')


def _class_lists(cfg: Config) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(where, classes) for each dataset's ``metainfo.classes`` and each metric's
    ``class_names``."""
    for split in SPLITS:
        loader = cfg.get(f'{split}_dataloader') or {}
        dataset = loader.get('dataset') or {} if isinstance(loader, dict) else {}
        classes = (dataset.get('metainfo') or {}).get('classes')
        if classes:
            yield f'{split}_dataloader.dataset.metainfo.classes', tuple(classes)
        evaluator = cfg.get(f'{split}_evaluator')
        metrics = evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]
        for index, metric in enumerate(metrics):
            if isinstance(metric, dict) and metric.get('class_names'):
                where = f'{split}_evaluator' + (
                    f'.{index}' if isinstance(evaluator, (list, tuple)) else ''
                )
                yield f'{where}.class_names', tuple(metric['class_names'])


def _class_counts(node, where: str) -> Iterator[tuple[str, int]]:
    if isinstance(node, dict):
        for key, value in node.items():
            path = f'{where}.{key}'
            if key in CLASS_COUNT_KEYS and isinstance(value, int):
                yield path, value
            yield from _class_counts(value, path)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _class_counts(value, f'{where}.{index}')


def check_classes_agree(cfg: Config) -> None:
    """Refuse a config whose datasets and metrics name different classes (or the same in
    another order), or whose head counts another number of them; ``InputError`` naming
    both places."""
    lists = list(_class_lists(cfg))
    if not lists:
        return
    filename = cfg.filename or 'the config'
    first, expected = lists[0]
    for where, classes in lists[1:]:
        if classes != expected:
            raise InputError(
                f'the classes differ: {first} is {list(expected)}, {where} is {list(classes)}; '
                'a class list set in your config does not reach what the base built from its '
                'own: set each of them (or copy the base entries that use class_names)',
                filename,
            )
    for where, value in _class_counts(cfg.get('model') or {}, 'model'):
        if value != len(expected):
            raise InputError(
                f'{where} is {value}, but {first} names {len(expected)} classes; set it to '
                f'{len(expected)}',
                filename,
            )

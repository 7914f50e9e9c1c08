"""Class names of AI City 2025 / Isaac Sim warehouse scenes, and the spellings read as them.

``CLASSES`` are the six classes of AI City 2025 Track 1 in the order of their submission
class ids 0-5 (formats.md §3.1); they are the default training classes, so the shipped
model and configs keep them. ``KNOWN_CLASSES`` adds ``PalletTruck``, class id 6 of the
2026 edition and of NVIDIA's 7-class warehouse model: readers accept it, training uses it
only where a config lists it.

``canonical_class_name`` maps a name as a file writes it to one of ``KNOWN_CLASSES``.
Names are compared after dropping case, spaces, underscores and hyphens, so
``nova_carter``, ``Nova Carter``, ``NOVA-CARTER`` and ``NovaCarter`` are one name. Beyond
that, ``ALIASES`` lists the other spellings that NVIDIA's public tools write, each with
its source (short names as in formats.md):

* ``character`` -> Person, ``iw_hub`` -> Transporter: raw Isaac Sim Replicator Agent
  class names, which NVIDIA's SDG ground-truth converter renames to the AI City names
  (SDG-TK ``convert_ground_truth.py``; formats.md §2.1).
* ``gr1_t2`` -> FourierGR1T2, ``agility_digit`` -> AgilityDigit: the humanoids' raw Isaac
  Sim names (SDG-TK) and the class names of TAO's Sparse4D spec (TAO-PT
  ``experiment_spec.yaml``, ``person, gr1_t2, agility_digit, nova_carter``) and of
  NVIDIA's 7-class warehouse class list (SDU ``configs/object_classes/warehouse.py``).
* ``Fourier_GR1_T2_Humanoid``, ``Agility_Digit_Humanoid``, ``Nova_Carter``,
  ``Pallet_Truck``: the display names of that warehouse class list (its
  ``MAP_CLASS_NAMES``), which its NVSchema output and ground truth write.
* ``palletjackforklift``, ``pallettruck``, ``forklift_1195`` -> PalletTruck: the
  sub-classes that the same class list folds into ``pallet_truck`` (its
  ``SUB_CLASS_DICT``). ``forklift_1195`` is an asset of a pallet truck despite its name.
* ``person``, ``forklift``, ``transporter``, ``nova_carter``: lower-case class names of
  SDU's ``constants.py`` and the warehouse class list; they need no entry, being the
  class names up to case and underscores.

``humanoid`` (SDU ``constants.py`` folds both humanoids into it) is refused as ambiguous:
it could be FourierGR1T2 or AgilityDigit. Every other name is refused: a class read under
a guessed name would be trained and scored as something it is not.
"""

from collections.abc import Iterable

from ...utils.input_error import InputError

CLASSES = ('Person', 'Forklift', 'NovaCarter', 'Transporter', 'FourierGR1T2', 'AgilityDigit')
KNOWN_CLASSES = (*CLASSES, 'PalletTruck')

# Normalised spelling -> class; the module docstring gives each entry's source.
ALIASES = {
    'character': 'Person',
    'iwhub': 'Transporter',
    'gr1t2': 'FourierGR1T2',
    'fouriergr1t2humanoid': 'FourierGR1T2',
    'agilitydigithumanoid': 'AgilityDigit',
    'palletjackforklift': 'PalletTruck',
    'forklift1195': 'PalletTruck',
}
# Names that stand for more than one class: refused with the candidates named.
AMBIGUOUS = {'humanoid': ('FourierGR1T2', 'AgilityDigit')}


class UnknownClassError(InputError):
    """A class name that is not one of ``KNOWN_CLASSES`` under any known spelling."""


def normalise_class_name(name: str) -> str:
    """``name`` in lower case without spaces, underscores and hyphens (the lookup key)."""
    return ''.join(c for c in str(name).strip().lower() if c not in ' _-')


_LOOKUP = {normalise_class_name(c): c for c in KNOWN_CLASSES} | ALIASES


def known_classes_text() -> str:
    """The known classes and how other spellings are matched, for error messages."""
    return (
        f'known classes: {", ".join(KNOWN_CLASSES)} (matched ignoring case, spaces, '
        'underscores and hyphens; other spellings in mmsparse4d/datasets/aicity/class_names.py)'
    )


def canonical_class_name(name: str) -> str:
    """The class that ``name`` spells, one of ``KNOWN_CLASSES``.

    Raises:
        UnknownClassError: ``name`` is not a known spelling, or is ambiguous.
    """
    key = normalise_class_name(name)
    if key in _LOOKUP:
        return _LOOKUP[key]
    if key in AMBIGUOUS:
        raise UnknownClassError(
            f'class {name!r} is ambiguous: it may be any of {", ".join(AMBIGUOUS[key])}'
        )
    raise UnknownClassError(f'unknown class {name!r}; {known_classes_text()}')


def canonical_class_names(names: Iterable[str], what: str = 'classes') -> tuple[str, ...]:
    """``canonical_class_name`` of each name, in order, without repeats.

    Args:
        what: how the caller calls the list (``--classes``), for the message.

    Raises:
        UnknownClassError: listing every unknown name at once.
    """
    result, unknown = [], []
    for name in names:
        try:
            canonical = canonical_class_name(name)
        except UnknownClassError:
            unknown.append(str(name))
            continue
        if canonical not in result:
            result.append(canonical)
    if unknown:
        raise UnknownClassError(f'{what}: unknown classes {unknown}; {known_classes_text()}')
    return tuple(result)


def ignore_keys(names: Iterable[str]) -> dict[str, str]:
    """Lookup keys of classes to ignore -> the name to report them by.

    A known spelling becomes its class (``pallet_truck`` ignores every spelling of
    PalletTruck); any other name is kept as written and matches the same name up to case,
    spaces, underscores and hyphens (so a ground truth's ``box`` can be ignored).
    """
    keys = {}
    for name in names:
        try:
            canonical = canonical_class_name(name)
        except UnknownClassError:
            keys[normalise_class_name(name)] = str(name)
            continue
        keys[normalise_class_name(canonical)] = canonical
    return keys

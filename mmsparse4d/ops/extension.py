"""Loading of the compiled extension ``mmsparse4d._ext``.

The extension registers its operators under ``torch.ops.mmsparse4d`` when imported. A
missing or broken build is an error that says how to build it; nothing falls back
silently (the pure-PyTorch reference is chosen explicitly, see
``MultiScaleDeformableAggregation``).
"""

import functools
import importlib
from types import ModuleType

BUILD_HINT = (
    'Build it from the repository root with `make install` (or '
    '`python setup.py build_ext --inplace` inside the project environment).'
)


class ExtensionNotBuiltError(ImportError):
    """Raised when ``mmsparse4d._ext`` cannot be imported."""


@functools.cache
def load_extension() -> ModuleType:
    """Import ``mmsparse4d._ext`` once and return it.

    Raises:
        ExtensionNotBuiltError: if the shared object is missing or does not load (for
            example, built against another torch).
    """
    try:
        return importlib.import_module('mmsparse4d._ext')
    except ImportError as error:
        raise ExtensionNotBuiltError(
            f'mmsparse4d compiled extension mmsparse4d._ext could not be imported ({error}). '
            + BUILD_HINT
        ) from error

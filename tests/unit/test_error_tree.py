"""One error tree: every exception class of scheduler/ and adapters/ descends from ``SmmError`` and is drawn.

The drawing in ``scheduler/errors.py`` is the whole tree, ``adapters/errors.py`` draws the adapters' branch; a
class added anywhere without a place in the drawing fails here, so no stray sneaks in.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType

import adapters
import adapters.errors
import scheduler
import scheduler.errors
from scheduler.errors import SmmError

ROOTS = (scheduler, adapters)


def _modules() -> list[ModuleType]:
    found: list[ModuleType] = list(ROOTS)
    for package in ROOTS:
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if not info.name.endswith("__main__"):
                found.append(importlib.import_module(info.name))
    return found


def _exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined in a module of scheduler/ or adapters/, by qualified name."""
    classes: dict[str, type[BaseException]] = {}
    pending: list[type[BaseException]] = [BaseException]
    _modules()
    while pending:  # subclasses, not module globals: a class defined inside a function counts too
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] in ("scheduler", "adapters"):
            classes[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return classes


_DRAWN = re.compile(r"^ {4}(?:[│ ]*[├└]── )?([A-Z]\w+)\s", re.MULTILINE)
"""A class in a drawn tree: the root at the literal block's indentation, or a child after its branch."""


def _tree(module: ModuleType) -> list[tuple[int, str]]:
    """The classes drawn in ``module``'s docstring, in order, with the column their name starts at."""
    return [(m.start(1) - m.start(), m.group(1)) for m in _DRAWN.finditer(module.__doc__ or "")]


def _drawn(module: ModuleType) -> set[str]:
    return {name for _, name in _tree(module)}


def test_every_exception_class_descends_from_the_root_and_is_drawn() -> None:
    classes = _exception_classes()
    assert "adapters.errors.PublishError" in classes and "scheduler.lock.AlreadyRunning" in classes
    strays = sorted(name for name, cls in classes.items() if not issubclass(cls, SmmError))
    assert not strays, f"these do not descend from SmmError: {strays}"
    drawn = _drawn(scheduler.errors)
    missing = sorted(name for name, cls in classes.items() if cls.__name__ not in drawn)
    assert not missing, f"draw these in scheduler/errors.py's docstring: {missing}"


def test_the_drawings_agree_with_the_classes() -> None:
    """Each drawn class exists and is drawn under its base class."""
    by_name = {cls.__name__: cls for cls in _exception_classes().values()}
    for module in (scheduler.errors, adapters.errors):
        tree = _tree(module)
        assert tree[0] == (4, "SmmError"), f"{module.__name__}: the drawing starts at the root"
        for index, (column, name) in enumerate(tree[1:], start=1):
            assert name in by_name, f"{module.__name__} draws {name}, which is not an exception class"
            parent = next(above for col, above in reversed(tree[:index]) if col == column - 4)
            assert by_name[name].__bases__[0] is by_name[parent], f"{module.__name__}: {name} is drawn under {parent}"

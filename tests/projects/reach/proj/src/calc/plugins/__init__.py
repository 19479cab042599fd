import importlib
import pkgutil


def names():
    return sorted(module.name for module in pkgutil.iter_modules(__path__))


def run_all():
    return {name: importlib.import_module(f"{__name__}.{name}").run() for name in names()}

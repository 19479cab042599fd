"""noxlib's version, in a module of its own: modules that name it import nothing else."""

__version__ = "0.1.0"

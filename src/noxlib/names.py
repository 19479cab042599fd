"""Names that several layers share and that cost nothing to import: xdist's own worker
variables, which noxlib sets in shard processes too (suites read them to give each worker its
own database or folder)."""

WORKER_ENV = "PYTEST_XDIST_WORKER"
WORKER_COUNT_ENV = "PYTEST_XDIST_WORKER_COUNT"

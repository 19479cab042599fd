import functools


@functools.lru_cache(maxsize=None)
def table():
    return {"one": 1, "two": 2}

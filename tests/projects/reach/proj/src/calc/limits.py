LIMIT = 10


def clamp(value):
    return min(value, LIMIT)

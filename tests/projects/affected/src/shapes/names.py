"""Names of shapes, for display."""


def shout(name):
    return name.upper() + "!"


def label(name, sides):
    return f"{name} ({sides} sides)"

def classify(n):
    if n < 0:
        return "negative"
    if n == 0:
        return "zero"
    return "positive"


def parity(n):
    return "even" if n % 2 == 0 else "odd"


def from_subprocess(n):
    return "odd-in-child" if n % 2 else "even-in-child"

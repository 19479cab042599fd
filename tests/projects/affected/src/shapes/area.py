"""Areas of shapes."""

from shapes.arith import mul, square


def rectangle(width, height):
    return mul(width, height)


def square_area(side):
    return square(side)

import pytest

from shapes.area import rectangle, square_area


@pytest.mark.parametrize(("width", "height", "area"), [(2, 3, 6), (1, 5, 5)])
def test_rectangle(width, height, area):
    assert rectangle(width, height) == area


def test_square_area():
    assert square_area(3) == 9

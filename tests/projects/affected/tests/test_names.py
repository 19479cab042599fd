from shapes.names import label, shout


def test_shout():
    assert shout("square") == "SQUARE!"


def test_label(sides):
    assert label("triangle", sides["triangle"]) == "triangle (3 sides)"


class TestLabels:
    def test_square(self, sides):
        assert label("square", sides["square"]) == "square (4 sides)"

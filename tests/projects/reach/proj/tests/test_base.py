class TestShortWords:
    # Inherited by tests/test_inherit.py: its test runs this method's code.
    words = ["a"]

    def test_words_are_short(self):
        assert all(len(word) < 3 for word in self.words)

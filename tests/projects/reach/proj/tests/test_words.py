from pathlib import Path

WORDS = Path(__file__).parent / "data" / "words.txt"


def test_two_words():
    assert WORDS.read_text().split() == ["alpha", "beta"]

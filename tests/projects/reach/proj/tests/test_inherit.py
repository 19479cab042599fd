import test_base


class TestLongerWords(test_base.TestShortWords):
    words = ["bb"]

def test_mode(env):
    assert env["mode"] == "fast"


def test_level(env):
    # env is session-scoped: make_env ran in test_mode's setup.
    assert env["level"] == 3

def make_env():
    return {"mode": "fast", "level": 3}

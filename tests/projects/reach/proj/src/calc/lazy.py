def build():
    return {"a": 1}


# Built once, when the first test that needs it imports the module.
TABLE = build()

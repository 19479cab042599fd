import noxlib

noxlib.register_sessions()

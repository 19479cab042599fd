import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from calc.server import reply

SRC = Path(__file__).parents[1] / "src"


def test_reply_to_anything_else():
    assert reply("/other") == "?"


def test_server_replies_pong():
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    server = subprocess.Popen(
        [sys.executable, "-m", "calc.server"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        port = int(server.stdout.readline())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=10) as answer:
            assert answer.read().decode() == "pong"
        server.wait(timeout=10)
    finally:
        server.kill()
        server.wait()

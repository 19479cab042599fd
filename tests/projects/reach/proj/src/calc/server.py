"""A one-request HTTP server, run as a subprocess by tests/test_server.py."""

import http.server


def reply(path):
    return "pong" if path == "/ping" else "?"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = reply(self.path).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_port, flush=True)
    server.handle_request()
    server.server_close()

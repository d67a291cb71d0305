# A tiny HTTP app to try pmx with: answers "hello from <app>" on 127.0.0.1:$PORT (default 8080).
import http.server
import os

PORT = int(os.environ.get("PORT", "8080"))
NAME = os.environ.get("PMX_NAME", "hello")


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello from {NAME} (instance {os.environ.get('NODE_APP_INSTANCE')})\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


print(f"{NAME} listening on 127.0.0.1:{PORT}", flush=True)
http.server.HTTPServer(("127.0.0.1", PORT), Hello).serve_forever()

"""Runs the django-scim2 peer: migrates the database, then serves HTTP on HOST PORT (0: a
free port the server binds itself). Once it listens it writes the bound port to the file
named by USERLOAD_SCIM_PORT_FILE. TERM stops it."""

import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "userload_peer.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402


class Quiet(WSGIRequestHandler):
    """Logs nothing per request (errors still reach the log through Django's logging)."""

    def log_message(self, format, *args):
        pass


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    call_command("migrate", verbosity=0, interactive=False)
    server = ThreadedWSGIServer((host, port), Quiet)
    server.set_app(get_wsgi_application())
    signal.signal(
        signal.SIGTERM,
        lambda *_: threading.Thread(target=server.shutdown, daemon=True).start(),
    )
    path = os.environ.get("USERLOAD_SCIM_PORT_FILE")
    if path:
        with open(path + ".tmp", "w") as f:
            f.write(str(server.server_port))
        os.replace(path + ".tmp", path)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()

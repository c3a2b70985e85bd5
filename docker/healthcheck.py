"""Exit 0 when Helpline's ``/healthz`` answers 200, else 1 (the image's HEALTHCHECK).

Usage: ``python healthcheck.py [URL]``; the default URL is
``http://127.0.0.1:$HELPLINE_PORT/healthz`` (port 8080 when unset). Only the
standard library is used, so it runs in any Python image.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    """Probe the URL once and return the exit status."""
    port = os.environ.get("HELPLINE_PORT") or "8080"
    url = argv[1] if len(argv) > 1 else f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=4) as resp:
            ok = resp.status == 200
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    print("healthy" if ok else f"unhealthy: {url}: {resp.status}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))

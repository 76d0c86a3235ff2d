"""A child process for test_worker_protocol.py: it chatters on its standard output, reports
progress, echoes each request, and dies when asked to."""

from __future__ import annotations

import json
import os
import sys

from clipfind.embedding.worker_protocol import Parent


def main() -> None:
    parent = Parent(json.loads(sys.argv[1]))
    print("a library's chatter on standard output")  # must not be taken for an answer
    parent.progress(5, 10)
    parent.send(ready=True)
    for request in parent.requests():
        if request.get("die"):
            os._exit(3)
        if request.get("fail"):
            parent.send(error="it could not", kind="load")
            continue
        parent.send(echo=request)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A milestoned client in Python's standard library alone: what an editor
plugin (or any script) needs to talk to the daemon without Rust.

The wire format is in PROTOCOL.md: every frame is a 4-byte big-endian
length and a payload; the first frame each way is the JSON handshake, and
with "encoding": "json" every later frame is JSON too.

    python3 milestones.py --root DIR ping
    python3 milestones.py --root DIR list [--status S]
    python3 milestones.py --root DIR get ID
    python3 milestones.py --root DIR create TITLE
    python3 milestones.py --root DIR watch [--count N]

Prints JSON (one object per line for watch). Exits 1 with the daemon's
message on an error reply.
"""

import argparse
import json
import os
import socket
import struct
import sys

PROTOCOL_VERSION = 1


class DaemonError(Exception):
    """The daemon answered a request with an error."""

    def __init__(self, info):
        super().__init__(info.get("message", "error"))
        self.kind = info.get("kind")
        self.field = info.get("field")


class Client:
    """One connection to milestoned, speaking the JSON encoding."""

    def __init__(self, socket_path, name="milestones.py"):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(socket_path)
        self.next_id = 1
        self._send({
            "protocol_version": PROTOCOL_VERSION,
            "client_name": name,
            "client_version": "1.0",
            "encoding": "json",
            "capabilities": [],
        })
        reply = self._receive()
        if "Rejected" in reply:
            raise DaemonError({"message": reply["Rejected"]["reason"]})
        self.welcome = reply["Welcome"]

    def _send(self, message):
        payload = json.dumps(message).encode()
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def _read_exactly(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("milestoned closed the connection")
            data += chunk
        return data

    def _receive(self):
        (length,) = struct.unpack(">I", self._read_exactly(4))
        return json.loads(self._read_exactly(length))

    def request(self, request):
        """Sends one request ("Ping", {"Get": {"id": "x"}}, ...) and returns
        the Ok value of its reply."""
        request_id = self.next_id
        self.next_id += 1
        self._send({"id": request_id, "request": request})
        while True:
            message = self._receive()
            reply = message.get("Reply")
            if reply is None or reply["id"] not in (request_id, 0):
                continue
            if "Err" in reply["result"]:
                raise DaemonError(reply["result"]["Err"])
            return reply["result"]["Ok"]

    def events(self, ids=(), statuses=(), kinds=()):
        """Subscribes and yields each event ({"Event": ...} or
        {"Lagged": ...}) as it comes."""
        answer = self.request({"Subscribe": {"filter": {"ids": list(ids), "statuses": list(statuses), "kinds": list(kinds)}}})
        if answer != "Subscribed":
            raise DaemonError({"message": "unexpected answer to Subscribe: %r" % (answer,)})
        while True:
            yield self._receive()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.environ.get("MILESTONES_ROOT", "."))
    parser.add_argument("--socket", help="default: ROOT/.milestones/milestoned.sock")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("ping")
    listing = commands.add_parser("list")
    listing.add_argument("--status")
    getting = commands.add_parser("get")
    getting.add_argument("id")
    creating = commands.add_parser("create")
    creating.add_argument("title")
    watching = commands.add_parser("watch")
    watching.add_argument("--count", type=int, help="stop after this many events")
    args = parser.parse_args()

    path = args.socket or os.path.join(args.root, ".milestones", "milestoned.sock")
    try:
        client = Client(path)
        if args.command == "ping":
            print(json.dumps(client.request("Ping")))
        elif args.command == "list":
            filters = []
            if args.status:
                filters.append({"path": "status", "op": "Eq", "value": args.status})
            query = {"filters": filters, "text": None, "sort": [], "include_archived": False, "limit": None, "offset": 0}
            print(json.dumps(client.request({"List": {"query": query}})["Page"]))
        elif args.command == "get":
            print(json.dumps(client.request({"Get": {"id": args.id}})["Document"]))
        elif args.command == "create":
            created = client.request({"Create": {"input": {"Fields": {"title": args.title}}}})
            print(json.dumps(created["Document"]))
        elif args.command == "watch":
            for seen, event in enumerate(client.events(), start=1):
                print(json.dumps(event), flush=True)
                if args.count and seen >= args.count:
                    break
    except DaemonError as e:
        print("milestones.py: %s" % e, file=sys.stderr)
        return 1
    except (OSError, ConnectionError) as e:
        print("milestones.py: cannot talk to milestoned at %s: %s" % (path, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

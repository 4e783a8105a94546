"""A real SMTP server for stepup's email delivery tests: aiosmtpd on 127.0.0.1.

Usage: server.py MAILDIR [--user NAME --password SECRET] [--refuse] [--port N]

Prints the port it listens on, alone on a line, then serves until its standard input closes (the test process
holds it). Every accepted message is written to MAILDIR as <n>.eml, the raw message as the client sent it, with
the envelope in X-Envelope-From / X-Envelope-To headers in front. With --user, clients must authenticate (PLAIN
or LOGIN; over plain TCP, since the test server has no certificate). With --refuse, every message is answered
554 (a permanent refusal).
"""

import argparse
import itertools
import os
import socket
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Maildir:
    def __init__(self, directory, refuse):
        self.directory = directory
        self.refuse = refuse
        self.counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        if self.refuse:
            return "554 5.7.1 Message refused by policy"
        number = next(self.counter)
        head = "X-Envelope-From: {}\r\nX-Envelope-To: {}\r\n".format(envelope.mail_from, ", ".join(envelope.rcpt_tos))
        path = os.path.join(self.directory, "{}.eml".format(number))
        with open(path + ".tmp", "wb") as file:
            file.write(head.encode("ascii"))
            file.write(envelope.original_content)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 Message accepted for delivery"


class Password:
    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == self.user and auth_data.password == self.password
        return AuthResult(success=ok, handled=False)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("maildir")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--refuse", action="store_true")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.maildir, exist_ok=True)
    options = {}
    if args.user:
        options = dict(authenticator=Password(args.user, args.password or ""), auth_required=True, auth_require_tls=False)
    # aiosmtpd's controller cannot listen on port 0 (it connects to its own port to check it is up): take a free
    # port from the OS first.
    port = args.port
    if port == 0:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    controller = Controller(Maildir(args.maildir, args.refuse), hostname="127.0.0.1", port=port, **options)
    controller.start()
    print(port, flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()

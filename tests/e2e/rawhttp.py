"""Raw-socket HTTP/1.x for the end-to-end tests.

requests and http.client normalise away exactly what these tests look at
(header spelling and order, pipelining, what happens on the wire after an
answer, whether the server closed), so most tests talk to tallyd through
this small client instead. Everything here has timeouts; nothing blocks
forever.
"""

import socket
import time

HOST = "127.0.0.1"


class Closed(Exception):
    """The peer closed (FIN or RST) before a whole answer arrived."""

    def __init__(self, msg, partial=b""):
        super().__init__(msg)
        self.partial = partial


class Response:
    def __init__(self, version, status, reason, headers, body, raw):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] as received
        self.body = body
        self.raw = raw

    def header(self, name):
        """First value of the header (case-insensitive), or None."""
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def json(self):
        import json

        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %d %r headers=%r body=%r>" % (
            self.status,
            self.reason,
            self.headers,
            self.body[:200],
        )


def build(method="GET", path="/", version="1.1", headers=None, body=b"", host=True):
    """Bytes of one request. headers: list of (name, value) or dict."""
    lines = ["%s %s HTTP/%s" % (method, path, version)]
    hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if host and not any(k.lower() == "host" for k, _ in hdrs):
        hdrs.insert(0, ("Host", "127.0.0.1"))
    for k, v in hdrs:
        lines.append("%s: %s" % (k, v))
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body


class Conn:
    """One client connection with a read buffer."""

    def __init__(self, port, timeout=5.0, host=HOST, rcvbuf=None):
        if rcvbuf is None:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        else:
            # Set before connecting, so the window the server sees is small.
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout)
            self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        self.eof = False

    # -- plumbing -----------------------------------------------------------

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def send_request(self, *args, **kwargs):
        self.send(build(*args, **kwargs))

    def _fill(self, deadline):
        """Reads more into buf. Raises Closed on EOF/RST, socket.timeout past
        the deadline."""
        if self.eof:
            raise Closed("connection closed", self.buf)
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out waiting for the server")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            self.eof = True
            raise Closed("connection reset", self.buf)
        if not data:
            self.eof = True
            raise Closed("connection closed", self.buf)
        self.buf += data

    # -- answers ------------------------------------------------------------

    def read_response(self, head=False, timeout=None):
        """Reads one whole answer. head=True: the request was HEAD (no
        body whatever Content-Length says). Raises Closed if the server
        closed before a whole answer, socket.timeout if none came."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        end = self.buf.index(b"\r\n\r\n")
        head_bytes = self.buf[:end].decode("latin-1")
        lines = head_bytes.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise AssertionError("bad status line %r" % lines[0])
        version = parts[0]
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise AssertionError("bad header line %r" % line)
            headers.append((name, value.strip()))
        rest_start = end + 4
        cl = None
        for k, v in headers:
            if k.lower() == "content-length":
                cl = int(v)
        if head or status in (204, 304) or 100 <= status < 200:
            n = 0
        elif cl is not None:
            n = cl
        else:
            # No length: the body runs to the close.
            while True:
                try:
                    self._fill(deadline)
                except Closed:
                    break
            n = len(self.buf) - rest_start
        while len(self.buf) < rest_start + n:
            try:
                self._fill(deadline)
            except Closed as e:
                raise Closed("closed in the middle of a body", e.partial)
        body = self.buf[rest_start : rest_start + n]
        raw = self.buf[: rest_start + n]
        self.buf = self.buf[rest_start + n :]
        return Response(version, status, reason, headers, body, raw)

    def request(self, *args, timeout=None, **kwargs):
        method = args[0] if args else kwargs.get("method", "GET")
        self.send_request(*args, **kwargs)
        return self.read_response(head=(method == "HEAD"), timeout=timeout)

    def wait_closed(self, timeout=3.0):
        """True when the server closes (FIN or RST) within timeout, without
        sending anything more; raises if bytes arrive; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if self.buf:
                raise AssertionError("unexpected bytes from the server: %r" % self.buf[:300])
            try:
                self._fill(deadline)
            except Closed:
                return True
            except socket.timeout:
                return False

    def is_open(self, wait=0.2):
        """True if nothing arrives and the connection stays open for `wait`
        seconds."""
        return not self.wait_closed(wait)


def request(port, method="GET", path="/", version="1.1", headers=None, body=b"", timeout=5.0):
    """One request on a fresh connection, closed afterwards."""
    with Conn(port, timeout=timeout) as c:
        return c.request(method, path, version, headers, body)


def connect_refused(port, timeout=1.0):
    """True when a TCP connect to port is refused."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((HOST, port))
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        s.close()
    return False

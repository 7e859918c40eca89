"""Every route of DESIGN.md section 3: status, body, headers."""

import email.utils
import json
import re
import time

import pytest

import rawhttp

DATE_RE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
                     r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
                     r"\d{2}:\d{2}:\d{2} GMT$")


def check_common_headers(r):
    """Headers every answer carries."""
    date = r.header("Date")
    assert date is not None and DATE_RE.match(date), r
    when = email.utils.parsedate_to_datetime(date).timestamp()
    assert abs(when - time.time()) < 5, "Date %r is not now" % date
    server = r.header("Server")
    assert server and server.lower().startswith("tally"), r
    assert len(r.header_all("Content-Length")) == 1, r
    assert len(r.header_all("Date")) == 1, r
    if r.status != 304 and r.body:
        assert int(r.header("Content-Length")) == len(r.body), r


def check_json_answer(r, status):
    assert r.status == status, r
    check_common_headers(r)
    assert r.header("Content-Type").split(";")[0].strip() == "application/json", r
    return json.loads(r.body)


# -- GET / and HEAD / ------------------------------------------------------------


def test_get_root_grants_numbers_then_go_away(tallyd):
    t = tallyd("--cap", "3")
    answers = [t.request("GET", "/") for _ in range(6)]
    docs = [check_json_answer(r, 200) for r in answers]
    assert docs[:3] == [{"hello": "world", "request_num": n} for n in (1, 2, 3)]
    assert docs[3:] == [{"Go": "away!", "request_num": 3}] * 3
    lengths = {int(r.header("Content-Length")) for r in answers}
    assert lengths == {33}, "every GET / answer under one cap has one length"
    assert all(len(r.body) == 33 for r in answers)
    assert answers[0].reason == "OK" and answers[0].version == "HTTP/1.1"


def test_root_with_query_string_is_root(tallyd):
    t = tallyd()
    assert check_json_answer(t.request("GET", "/?x=1&y=2"), 200) == {"hello": "world",
                                                                     "request_num": 1}


@pytest.mark.parametrize("cap", ["1", "9", "10", "99999", "1000000000000000"])
def test_cap_flag_sets_cap_and_fixed_length(tallyd, cap):
    c = int(cap)
    t = tallyd("--cap", cap)
    answers = [t.request("GET", "/") for _ in range(min(c, 3) + 2)]
    docs = [check_json_answer(r, 200) for r in answers]
    for i, d in enumerate(docs[: min(c, 3)]):
        assert d == {"hello": "world", "request_num": i + 1}
    if c <= 3:
        assert docs[c:] == [{"Go": "away!", "request_num": c}] * (len(docs) - c)
    lengths = {int(r.header("Content-Length")) for r in answers}
    assert len(lengths) == 1
    # The longer shape, {"hello":"world","request_num":CAP}, fits exactly.
    assert lengths == {len('{"hello":"world","request_num":%d}' % c)}


def test_head_root_claims_a_number_and_sends_no_body(tallyd):
    t = tallyd("--cap", "2")
    with t.conn() as c:
        # HEAD then GET in one send: if HEAD carried a body the GET answer
        # would not parse where it starts.
        c.send(rawhttp.build("HEAD", "/") + rawhttp.build("GET", "/"))
        h = c.read_response(head=True)
        g = c.read_response()
        assert h.status == 200 and h.body == b""
        check_common_headers(h)
        assert h.header("Content-Length") == g.header("Content-Length") == "33"
        assert h.header("Content-Type").startswith("application/json")
        assert json.loads(g.body) == {"hello": "world", "request_num": 2}
        # At the cap, HEAD answers 200 without a body too.
        h2 = c.request("HEAD", "/")
        assert h2.status == 200 and h2.body == b"" and h2.header("Content-Length") == "33"
        assert c.is_open(0.3), "no stray body bytes after a HEAD answer"
    t.stop_ok()
    assert t.request_counts() == [1, 2]


def test_date_header_follows_the_clock(tallyd):
    """The Date header is cached, but refreshed every second."""
    t = tallyd()
    with t.conn() as c:
        d1 = email.utils.parsedate_to_datetime(c.request("GET", "/healthz").header("Date"))
        time.sleep(1.2)
        d2 = email.utils.parsedate_to_datetime(c.request("GET", "/healthz").header("Date"))
    assert (d2 - d1).total_seconds() >= 1
    assert abs(d2.timestamp() - time.time()) < 2


# -- health, readiness, metrics ------------------------------------------------


def test_healthz(tallyd):
    t = tallyd()
    r = t.request("GET", "/healthz")
    doc = check_json_answer(r, 200)
    assert isinstance(doc, dict)
    h = rawhttp.Conn(t.port)
    with h:
        r = h.request("HEAD", "/healthz")
        assert r.status == 200 and r.body == b""
    assert check_json_answer(t.request("GET", "/healthz?probe=1"), 200) is not None
    # Health checks never consume numbers.
    assert check_json_answer(t.request("GET", "/"), 200)["request_num"] == 1


def test_readyz_memory_backend_is_ready(tallyd):
    t = tallyd()
    r = t.request("GET", "/readyz")
    assert isinstance(check_json_answer(r, 200), dict)
    with t.conn() as c:
        r = c.request("HEAD", "/readyz")
        assert r.status == 200 and r.body == b""


SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$")
LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def parse_prometheus(text):
    """Parses the text exposition format (0.0.4) strictly enough to catch
    malformed output. Returns (types, samples): types {family: type},
    samples {(name, ((label, value), ...)): float}."""
    assert text.endswith("\n"), "exposition must end with a newline"
    types, samples, helps = {}, {}, set()
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert name not in helps, "two HELP lines for %s" % name
            helps.add(name)
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            assert len(parts) == 4, line
            assert parts[3] in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert parts[2] not in types, "two TYPE lines for %s" % parts[2]
            types[parts[2]] = parts[3]
            continue
        if line.startswith("#") or line == "":
            continue
        m = SAMPLE_RE.match(line)
        assert m, "bad sample line %r" % line
        name, labels_s, value = m.group(1), m.group(2) or "", m.group(3)
        labels, pos = [], 0
        while pos < len(labels_s):
            lm = LABEL_RE.match(labels_s, pos)
            assert lm and lm.end() > pos, "bad labels in %r" % line
            labels.append((lm.group(1), lm.group(2)))
            pos = lm.end()
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[: -len(suffix)] in types:
                family = name[: -len(suffix)]
        assert family in types, "sample %s before (or without) its TYPE line" % name
        key = (name, tuple(sorted(labels)))
        assert key not in samples, "duplicate sample %r" % line
        samples[key] = float(value)
    return types, samples


def metric(samples, name, **labels):
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, "no sample %s%r in %r" % (name, labels, sorted(samples))
    return samples[key]


def metric_sum(samples, name, **labels):
    """Sum of every sample of name whose labels include the given ones."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def get_metrics(t):
    r = t.request("GET", "/metrics")
    assert r.status == 200, r
    check_common_headers(r)
    ctype = r.header("Content-Type")
    assert ctype.startswith("text/plain") and "version=0.0.4" in ctype, ctype
    return parse_prometheus(r.body.decode("utf-8"))


def test_metrics_counts_match_what_was_sent(tallyd):
    t = tallyd("--threads", "2", "--cap", "3")
    types0, m0 = get_metrics(t)
    assert types0.get("tally_requests_total") == "counter"
    assert types0.get("tally_claims_total") == "counter"
    assert types0.get("tally_backend_up") == "gauge"
    assert types0.get("tally_open_connections") == "gauge"

    for _ in range(5):
        assert t.request("GET", "/").status == 200
    for _ in range(2):
        assert t.request("GET", "/healthz").status == 200
    assert t.request("HEAD", "/healthz").status == 200
    assert t.request("GET", "/nope").status == 404
    assert t.request("POST", "/", headers={"Content-Length": "0"}).status == 405
    _, m1 = get_metrics(t)

    def delta(name, **labels):
        return metric_sum(m1, name, **labels) - metric_sum(m0, name, **labels)

    assert delta("tally_requests_total", route="/", code="2xx") == 5
    assert delta("tally_requests_total", route="/healthz", code="2xx") == 3
    assert delta("tally_requests_total", route="/metrics", code="2xx") == 1  # the first scrape
    assert delta("tally_requests_total", code="4xx") == 2
    assert delta("tally_requests_total", code="5xx") == 0
    assert delta("tally_requests_total") == 11
    assert metric(m1, "tally_claims_total", outcome="granted") == 3
    assert metric(m1, "tally_claims_total", outcome="capped") == 2
    assert metric(m1, "tally_claims_total", outcome="failed") == 0
    up = [(ls, v) for (n, ls), v in m1.items() if n == "tally_backend_up"]
    assert len(up) == 2, "one backend_up per worker: %r" % up
    assert all(v == 1 for _, v in up)
    assert all(("backend", "memory") in ls for ls, _ in up)

    # Every connection above was closed by the client: once the server has
    # seen the closes, only the scrape's own connection is open.
    deadline = time.monotonic() + 3
    while True:
        _, m = get_metrics(t)
        if metric(m, "tally_open_connections") == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert metric(m, "tally_open_connections") == 1


def test_metrics_has_latency_histogram(tallyd):
    """DESIGN.md: /metrics includes a latency histogram."""
    t = tallyd("--threads", "2")
    types, before = get_metrics(t)
    started = time.monotonic()
    for _ in range(4):
        t.request("GET", "/")
    with rawhttp.Conn(t.port) as c:  # a 400 (answered from the error path) is timed too
        c.send(b"GARBAGE\r\n\r\n")
        assert c.read_response().status == 400
    types, samples = get_metrics(t)
    wall = time.monotonic() - started
    hists = [name for name, ty in types.items() if ty == "histogram"]
    assert hists, "no histogram family in /metrics: %s" % sorted(types)
    total = 0
    for h in hists:
        buckets = {}
        for (n, ls), v in samples.items():
            if n == h + "_bucket":
                d = dict(ls)
                rest = tuple(sorted((k, x) for k, x in ls if k != "le"))
                buckets.setdefault(rest, []).append((float(d["le"]), v))
        assert buckets, "histogram %s has no buckets" % h
        for rest, bs in buckets.items():
            bs.sort()
            assert bs[-1][0] == float("inf"), "no le=\"+Inf\" bucket in %s" % h
            values = [v for _, v in bs]
            assert values == sorted(values), "buckets of %s are not cumulative" % h
            count = samples[(h + "_count", rest)]
            assert (h + "_sum", rest) in samples
            assert bs[-1][1] == count
            # Requests one after another: what the server timed between the
            # two scrapes adds up to less than the client's wall time.
            added = samples[(h + "_sum", rest)] - before.get((h + "_sum", rest), 0)
            assert 0 <= added <= wall, (h, added, wall)
            total += count - before.get((h + "_count", rest), 0)
    assert total >= 6, "the histograms saw fewer requests than were answered"


# -- errors: 404, 405 ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/healthz/", "/HEALTHZ", "/metricsx", "//",
                                  "/" + "a" * 300, "/index.html?x=1", "/%2F"])
def test_unknown_path_is_404_json(tallyd, path):
    t = tallyd()
    r = t.request("GET", path)
    doc = check_json_answer(r, 404)
    assert isinstance(doc, dict) and "error" in doc, doc
    # The connection stays usable (a 404 is not a protocol error).
    with t.conn() as c:
        r = c.request("GET", path)
        assert r.status == 404
        assert c.request("GET", "/healthz").status == 200
    assert check_json_answer(t.request("GET", "/"), 200)["request_num"] == 1


@pytest.mark.parametrize("method,path,allow", [
    ("POST", "/", {"GET", "HEAD"}),
    ("PUT", "/", {"GET", "HEAD"}),
    ("DELETE", "/", {"GET", "HEAD"}),
    ("OPTIONS", "/", {"GET", "HEAD"}),
    ("POST", "/healthz", {"GET", "HEAD"}),
    ("POST", "/readyz", {"GET", "HEAD"}),
    ("PUT", "/metrics", {"GET", "HEAD"}),
    ("GET", "/reset", {"POST"}),
    ("HEAD", "/reset", {"POST"}),
])
def test_wrong_method_is_405_with_allow(tallyd, method, path, allow):
    t = tallyd(env={"TALLY_ADMIN_TOKEN": "s3cret"})
    with t.conn() as c:
        r = c.request(method, path, headers={"Content-Length": "0"})
        assert r.status == 405, r
        check_common_headers(r)
        got = {m.strip() for m in r.header("Allow").split(",")}
        assert got == allow, r
        if method != "HEAD":
            assert "error" in json.loads(r.body)
        # Still served on the same connection.
        assert c.request("GET", "/healthz").status == 200
    # A refused method never claims a number.
    assert check_json_answer(t.request("GET", "/"), 200)["request_num"] == 1


def test_absolute_form_request_target(tallyd):
    """RFC 9112 3.2.2: a server MUST accept the absolute-form."""
    t = tallyd()
    r = t.request("GET", "http://127.0.0.1:%d/healthz" % t.port)
    assert r.status == 200, r


# -- POST /reset -------------------------------------------------------------------


def test_reset_without_admin_token_is_404(tallyd):
    t = tallyd()
    r = t.request("POST", "/reset", headers={"Content-Length": "0"})
    assert "error" in check_json_answer(r, 404)
    r = t.request("POST", "/reset", headers={"Authorization": "Bearer ", "Content-Length": "0"})
    assert r.status == 404
    assert check_json_answer(t.request("GET", "/"), 200)["request_num"] == 1


@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Bearer s3cre", "Bearer s3cretX",
                                  "Basic s3cret", "s3cret", "Bearer S3CRET", "Bearer s3cret, Bearer s3cret"])
def test_reset_with_wrong_token_is_401(tallyd, auth):
    t = tallyd("--cap", "2", env={"TALLY_ADMIN_TOKEN": "s3cret"})
    assert [t.get_json("/")[1]["request_num"] for _ in range(3)] == [1, 2, 2]
    headers = [("Content-Length", "0")]
    if auth is not None:
        headers.append(("Authorization", auth))
    r = t.request("POST", "/reset", headers=headers)
    assert "error" in check_json_answer(r, 401)
    assert r.header("WWW-Authenticate") is not None  # RFC 9110 15.5.2
    # Nothing was reset.
    assert t.get_json("/")[1] == {"Go": "away!", "request_num": 2}


def test_reset_with_right_token_restarts_the_count(tallyd):
    t = tallyd("--threads", "2", "--cap", "3", env={"TALLY_ADMIN_TOKEN": "s3cret"})
    assert [t.get_json("/")[1]["request_num"] for _ in range(4)] == [1, 2, 3, 3]
    r = t.request("POST", "/reset", headers={"Authorization": "Bearer s3cret",
                                             "Content-Length": "0"})
    check_json_answer(r, 200)
    # The scheme is case-insensitive (RFC 9110 11.1).
    status, doc = t.get_json("/")
    assert (status, doc) == (200, {"hello": "world", "request_num": 1})
    r = t.request("POST", "/reset", headers={"Authorization": "bearer s3cret",
                                             "Content-Length": "0"})
    assert r.status == 200
    assert [t.get_json("/")[1]["request_num"] for _ in range(4)] == [1, 2, 3, 3]
    t.stop_ok()
    assert sorted(t.request_counts()) == [1, 1, 1, 2, 2, 3, 3]

#!/usr/bin/python3
"""Writes the hand-written seed corpus of the fuzz targets:
tests/fuzz/corpus/<target>/<name>. Run from anywhere; it rewrites only the
files it names (reproducers kept next to them are left alone).

Input layouts are described at the top of each tests/fuzz/fuzz_*.c.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# fuzz_http settings byte: bits 0-1 max header size (8k, 256, 512, 1k),
# bits 2-3 max body size (1m, 0, 16, 100), bit 4 admin token configured,
# bit 5 flaky backend, bits 6-7 CAP (100, 1, 3, 10^15).
H256 = 0x01
BODY16 = 0x08
TOKEN = 0x10
FLAKY = 0x20
CAP1 = 0x40
CAPMAX = 0xC0


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("latin-1")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def http(name, stream, settings=0, sizes=()):
    """sizes: read sizes (1..256) used in turn; none: one read."""
    assert len(sizes) <= 15 and all(1 <= s <= 256 for s in sizes)
    if isinstance(stream, str):
        stream = stream.encode("latin-1")
    write("fuzz_http", name, bytes([settings, len(sizes)]) + bytes(s - 1 for s in sizes) + stream)


def req(method="GET", target="/", version="HTTP/1.1", headers=("Host: a",), body=""):
    head = "%s %s %s\r\n" % (method, target, version)
    return head + "".join(h + "\r\n" for h in headers) + "\r\n" + body


def http_seeds():
    get = req()
    # valid requests, one read
    http("get_root", get)
    http("head_root", req("HEAD"))
    http("get_healthz", req(target="/healthz"))
    http("get_readyz", req(target="/readyz"))
    http("get_readyz_flaky", req(target="/readyz"), FLAKY)
    http("get_metrics", req(target="/metrics"))
    http("http10", "GET / HTTP/1.0\r\n\r\n")
    http("http10_keepalive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    http("http11_close", req(headers=("Host: a", "Connection: close")))
    http("query_and_fragment", req(target="/healthz?x=1#f") + req(target="/?a=b"))
    http("absolute_form", req(target="http://a:8080/healthz") + req(target="http://a"))
    http("not_found", req(target="/nope") + req(target="/healthzz"))
    http("long_path", req(target="/" + "a" * 300))
    http("method_not_allowed", req("POST", "/") + req("DELETE", "/healthz") + req(target="/reset"))
    http("unknown_method", "FOO / HTTP/1.1\r\nHost: a\r\n\r\n")
    http("post_body", req("POST", "/", headers=("Host: a", "Content-Length: 5"), body="hello") + get)
    http("chunked_body", req("POST", "/nope", headers=("Host: a", "Transfer-Encoding: chunked"),
                             body="5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n") + get)
    http("expect_continue", req("POST", "/", headers=("Host: a", "Expect: 100-continue",
                                                       "Content-Length: 1"), body="x"))
    http("lf_only", "GET / HTTP/1.1\nHost: a\n\n")
    # reset and the admin token ("s3cret-token" in the harness)
    http("reset_no_token", req("POST", "/reset", headers=("Host: a", "Authorization: Bearer x")))
    http("reset_ok", req("POST", "/reset", headers=("Host: a",
                                                     "Authorization: Bearer s3cret-token")), TOKEN)
    http("reset_scheme_case", req("POST", "/reset", headers=(
        "Host: a", "authorization: bEaReR s3cret-token")), TOKEN)
    http("reset_wrong", req("POST", "/reset", headers=("Host: a", "Authorization: Bearer s3cret")),
         TOKEN)
    http("reset_longer", req("POST", "/reset", headers=(
        "Host: a", "Authorization: Bearer s3cret-tokenX")), TOKEN)
    http("reset_twice", req("POST", "/reset", headers=(
        "Host: a", "Authorization: Bearer s3cret-token", "Authorization: Bearer s3cret-token")),
        TOKEN)
    http("reset_missing", req("POST", "/reset"), TOKEN)
    http("reset_split", req("POST", "/reset", headers=(
        "Host: a", "Authorization: Bearer s3cret-token")), TOKEN, (1, 3, 7))
    # pipelining, ring of 16, caps, flaky backend
    http("pipelined_3", get + req("HEAD") + req(target="/healthz"))
    http("pipelined_20", get * 20)
    http("pipelined_40_mixed", (get + req(target="/metrics") + req("HEAD", "/x") +
                                req("POST", "/reset")) * 10, TOKEN)
    http("pipelined_cap1", get * 5, CAP1)
    http("pipelined_capmax", get * 3 + req("HEAD"), CAPMAX)
    http("pipelined_flaky", get * 7, FLAKY)
    http("pipelined_close_mid", get * 2 + req(headers=("Host: a", "Connection: close")) + get * 3)
    http("pipelined_100", "GET / HTTP/1.1\r\nHost: a\r\n\r\n" * 100, 0, (200, 37))
    # splits: one byte per read, and odd sizes
    http("split_bytes", get + req(target="/healthz"), 0, (1,))
    http("split_odd", get * 4, 0, (2, 5, 1, 13))
    http("split_header_value", req(headers=("Host: a", "X-Long: " + "v" * 40)), 0, (20, 3))
    http("split_ring_full", get * 18, 0, (100, 256))
    # upgrades
    http("upgrade", req(headers=("Host: a", "Connection: Upgrade", "Upgrade: websocket")) + get)
    http("connect", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n" + get)
    # bad input, README's table: 400
    http("bad_garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    http("bad_no_host", "GET / HTTP/1.1\r\n\r\n")
    http("bad_two_hosts", req(headers=("Host: a", "Host: b")))
    http("bad_space_before_colon", req(headers=("Host : a",)))
    http("bad_space_in_name", req(headers=("Host: a", "X Y: z")))
    http("bad_obs_fold", req(headers=("Host: a", "X: a", " b")))
    http("bad_obs_fold_split", req(headers=("Host: a", "X: a", "\tb")), 0, (29, 1, 1))
    http("bad_te_and_cl", req("POST", "/", headers=("Host: a", "Transfer-Encoding: chunked",
                                                     "Content-Length: 3"), body="0\r\n\r\n"))
    http("bad_cl_twice", req("POST", "/", headers=("Host: a", "Content-Length: 3",
                                                    "Content-Length: 4"), body="abcd"))
    http("bad_cl_same_twice", req("POST", "/", headers=("Host: a", "Content-Length: 3",
                                                         "Content-Length: 3"), body="abc"))
    http("bad_cl_sign", req("POST", "/", headers=("Host: a", "Content-Length: +3"), body="abc"))
    http("bad_te_not_chunked", req("POST", "/", headers=("Host: a", "Transfer-Encoding: gzip"),
                                   body="x"))
    http("bad_te_chunked_identity", req("POST", "/", headers=(
        "Host: a", "Transfer-Encoding: chunked, identity"), body="0\r\n\r\n"))
    http("bad_chunk_size", req("POST", "/", headers=("Host: a", "Transfer-Encoding: chunked"),
                               body="zz\r\nhello\r\n0\r\n\r\n"))
    http("bad_chunk_negative", req("POST", "/", headers=("Host: a", "Transfer-Encoding: chunked"),
                                   body="-1\r\nx\r\n0\r\n\r\n"))
    http("bad_chunk_huge", req("POST", "/", headers=("Host: a", "Transfer-Encoding: chunked"),
                               body="ffffffffffffffffff\r\nx\r\n"))
    http("bad_nul_in_url", "GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n")
    http("bad_ctl_in_value", req(headers=("Host: a", "X: a\x01b")))
    http("bad_del_in_name", req(headers=("Host: a", "X\x7f: b")))
    http("bad_bare_cr", "GET / HTTP/1.1\rHost: a\r\n\r\n")
    http("bad_after_good", get + "GET / HTTP/1.1\r\nHost: a\r\nX\r\n\r\n" + get)
    # 431 and 413
    http("431_url_small_limit", req(target="/" + "u" * 300), H256)
    http("431_headers_default", req(headers=("Host: a",) + tuple("X-%d: %s" % (i, "h" * 90)
                                                                   for i in range(90))))
    http("431_many_headers", req(headers=("Host: a",) + ("X: y",) * 60), H256, (64,))
    http("413_content_length", req("POST", "/", headers=("Host: a", "Content-Length: 2000000")))
    http("413_small_limit", req("POST", "/", headers=("Host: a", "Content-Length: 17"),
                                body="x" * 17), BODY16)
    http("413_chunked", req("POST", "/", headers=("Host: a", "Transfer-Encoding: chunked"),
                            body="a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n"), BODY16)
    # 505
    http("505_http09", "GET /\r\n")
    http("505_http20", "GET / HTTP/2.0\r\nHost: a\r\n\r\n")
    http("505_http12", "GET / HTTP/1.2\r\nHost: a\r\n\r\n")
    http("505_http30", "GET / HTTP/3.0\r\n\r\n")
    http("505_prior_knowledge_h2", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")


def config(name, argv=(), env=()):
    data = "".join(a + "\0" for a in argv)
    if env:
        data += "\0" + "".join(e + "\0" for e in env)
    write("fuzz_config", name, data)


def config_seeds():
    config("defaults")
    config("port_space", ("--port", "8080"))
    for v in ("0", "1", "65535", "65536", "08080", "-1", " 80"):
        config("port_" + v.strip(), ("--port=" + v,))
    config("cap_max", ("--cap=1000000000000000",))
    config("cap_over", ("--cap=1000000000000001",))
    config("cap_zero", ("--cap=0",))
    config("cap_u64_overflow", ("--cap=18446744073709551616",))
    config("threads", ("--threads=auto", "--threads", "1024"))
    config("threads_over", ("--threads=1025",))
    config("host_v6", ("--host=::", "--host=::1"))
    config("host_localhost", ("--host=localhost",))
    config("host_name", ("--host=example.com",))
    config("host_long", ("--host=" + "1" * 80,))
    config("backend_redis", ("--backend=redis", "--redis-url=redis://:pw@h:1/2", "--key=k"))
    config("backend_unix", ("--backend", "redis", "--redis-url", "unix:///tmp/r.sock?db=3"))
    config("backend_postgres_missing", ("--backend=postgres",))
    config("backend_postgres", ("--backend=postgresql", "--database-url=host=x dbname=y"))
    config("database_uri", ("--database-url=postgresql://u:p@h:5/d?sslmode=disable",))
    config("database_bad", ("--database-url=host='x",))
    config("database_long", ("--database-url=host=h dbname=" + "d" * 4100,))
    config("redis_bad", ("--redis-url=http://h",))
    config("log", ("--log-level=WARN", "--log-format=text"))
    config("log_bad", ("--log-format=xml",))
    config("sizes", ("--max-header-size=8k", "--max-body-size=1024m"))
    config("sizes_bad", ("--max-header-size=255",))
    config("body_over", ("--max-body-size=1025m",))
    config("durations", ("--header-timeout=1.5s", "--idle-timeout=250ms",
                         "--shutdown-timeout=0", "--backend-timeout=2m"))
    config("duration_hour", ("--header-timeout=1h",))
    config("duration_over", ("--idle-timeout=25h",))
    config("duration_zero", ("--header-timeout=0",))
    config("duration_backend_low", ("--backend-timeout=9ms",))
    config("key_space", ("--key=a b",))
    config("max_connections", ("--max-connections=1000000",))
    config("help", ("--help",))
    config("help_short", ("--port=1", "-h"))
    config("version", ("-V",))
    config("help_as_value", ("--port", "--help"))
    config("unknown", ("--bogus=1",))
    config("unknown_ctl", ("--\x1b[31mred",))
    config("missing_value", ("--port",))
    config("empty_value", ("--cap=",))
    config("env_port", (), ("TALLY_PORT=9",))
    config("env_alias_bad", (), ("PORT=abc",))
    config("env_both", (), ("TALLY_PORT=1", "PORT=2"))
    config("env_token", (), ("TALLY_ADMIN_TOKEN=tok",))
    config("env_token_space", (), ("TALLY_ADMIN_TOKEN=has space",))
    config("env_empty", (), ("TALLY_CAP=",))
    config("flag_wins", ("--cap=5",), ("TALLY_CAP=x",))
    config("env_all", (), ("TALLY_HOST=127.0.0.1", "TALLY_BACKEND=redis",
                           "REDIS_URL=redis://[::1]:6380/1", "TALLY_KEY=c", "TALLY_THREADS=2",
                           "DATABASE_URL=postgresql:///d", "TALLY_LOG_LEVEL=debug"))


def url_seeds():
    urls = {
        "redis_default": "redis://127.0.0.1:6379/0",
        "redis_password": "redis://:secret@host:1/15",
        "redis_user_password": "redis://user:secret@host",
        "redis_user_only": "redis://user:@host",
        "redis_pct": "redis://%73ecret@h",
        "redis_pct_bad": "redis://%zz@h",
        "redis_pct_nul": "redis://%00@h",
        "redis_at_twice": "redis://a@b@h",
        "redis_v6": "redis://[::1]:6380/1",
        "redis_v6_bare": "redis://[::1]",
        "redis_v6_junk": "redis://[::1]x",
        "redis_v6_open": "redis://[::1",
        "redis_port_0": "redis://host:0",
        "redis_port_big": "redis://host:65536",
        "redis_port_empty": "redis://host:",
        "redis_empty": "redis://",
        "redis_no_host": "redis://@h",
        "redis_db_bad": "redis://h/abc",
        "redis_db_path": "redis://h/1/2",
        "redis_db_big": "redis://h/99999999",
        "redis_host_long": "redis://" + "h" * 300,
        "unix": "unix:///tmp/redis.sock",
        "unix_db": "unix:///tmp/r.sock?db=2",
        "unix_relative": "unix://rel",
        "unix_db_empty": "unix:///?db=",
        "unix_long": "unix:///" + "p" * 120,
        "http": "http://h",
        "pg_uri": "postgresql://u:secret@h:5432/db",
        "pg_uri_params": "postgres://h/db?sslmode=require&password=secret",
        "pg_conninfo": "host=h port=5 dbname=d password=secret",
        "pg_conninfo_quoted": "host='a b' password='x\\'y'",
        "pg_bad": "=bad",
        "pg_v6": "postgresql://[::1]:5/d",
        "pg_multi": "postgresql://h:5,h2:6/d",
        "pg_pct_bad": "postgresql://%zz",
        "pg_unknown_key": "hots=x",
    }
    for name, u in urls.items():
        write("fuzz_url", name, u)


def replies(name, payload, k=10, cut=0):
    if isinstance(payload, str):
        payload = payload.encode("latin-1")
    write("fuzz_replies", name, struct.pack("<IB", k, cut) + payload)


def replies_seeds():
    replies("claim_ok", "*2\r\n:5\r\n:3\r\n")
    replies("claim_ok_cut", "*2\r\n:5\r\n:3\r\n", 10, 7)
    replies("claim_zero", "*2\r\n:100\r\n:0\r\n", 1)
    replies("claim_over_k", "*2\r\n:5\r\n:3\r\n", 2)
    replies("claim_negative", "*2\r\n:-1\r\n:1\r\n")
    replies("claim_big", "*2\r\n:9223372036854775807\r\n:4294967295\r\n", 0xFFFFFFFF)
    replies("claim_three", "*3\r\n:1\r\n:1\r\n:1\r\n")
    replies("claim_string", "*2\r\n$1\r\n5\r\n:3\r\n")
    replies("claim_nil_element", "*2\r\n$-1\r\n:3\r\n")
    replies("noscript", "-NOSCRIPT No matching script. Please use EVAL.\r\n")
    replies("noscript_short", "-NOSCRIP\r\n")
    replies("error", "-ERR wrong number of arguments\r\n")
    replies("error_empty", "-\r\n")
    replies("nil", "$-1\r\n")
    replies("count", "$3\r\n123\r\n")
    replies("count_negative", "$3\r\n-12\r\n")
    replies("count_overflow", "$20\r\n99999999999999999999\r\n")
    replies("count_nul", "$3\r\n1\x002\r\n")
    replies("ok", "+OK\r\n")
    replies("okay", "+OKAY\r\n")
    replies("ok_as_string", "$2\r\nOK\r\n")
    replies("array_nil", "*-1\r\n")
    replies("array_empty", "*0\r\n")
    replies("nested", "*2\r\n*2\r\n:1\r\n:2\r\n:3\r\n")
    replies("nested_deep", "*1\r\n" * 9 + ":1\r\n")
    replies("several", "+OK\r\n$-1\r\n*2\r\n:0\r\n:1\r\n-NOSCRIPT x\r\n:7\r\n", 1, 9)
    replies("protocol_error", "?what\r\n")
    replies("pg_row", "5\x008", 3)
    replies("pg_row_over_k", "5\x0009", 3)
    replies("pg_row_backwards", "8\x005", 3)
    replies("pg_row_max", "9223372036854775807\x009223372036854775807", 0)
    replies("pg_row_leading_zeros", "00012\x0015", 3)
    replies("pg_row_empty", "\x001", 3)
    replies("pg_row_space", "1 \x002", 3)


if __name__ == "__main__":
    http_seeds()
    config_seeds()
    url_seeds()
    replies_seeds()

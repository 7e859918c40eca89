"""The throwaway backends themselves work: start, answer, stop, crash,
restart on the same port with the same data. (tallyd's redis and postgres
backends come next; these servers are what their tests will run against.)"""

import subprocess

from servers import PostgresServer, RedisServer


def test_redis_server_starts_pings_and_stops(redis_server):
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(redis_server.port), "ping"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and out.stdout.strip() == "PONG"
    assert redis_server.url == "redis://127.0.0.1:%d/0" % redis_server.port
    assert redis_server.cli("set", "request_count", "7") == "OK"
    redis_server.stop()
    assert not redis_server.running()
    assert not redis_server.ping()


def test_redis_server_kill_and_restart_same_port(redis_server):
    port = redis_server.port
    redis_server.kill()
    assert not redis_server.ping()
    redis_server.restart()
    assert redis_server.port == port
    assert redis_server.cli("ping") == "PONG"
    redis_server.restart()
    assert redis_server.cli("incr", "k") == "1"


def test_postgres_server_starts_pings_and_stops(postgres_server):
    assert postgres_server.psql("select 1") == "1"
    assert postgres_server.url == "postgresql://postgres@127.0.0.1:%d/postgres" % postgres_server.port
    out = subprocess.run(["psql", "-X", postgres_server.url, "-Atc", "show server_version_num"],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("15")
    postgres_server.stop()
    assert not postgres_server.running()
    assert not postgres_server.ping()


def test_postgres_server_kill_and_restart_keeps_data(postgres_server):
    pg = postgres_server
    pg.psql("create table t (v int); insert into t values (41)")
    pg.kill()
    assert not pg.running()
    assert not pg.ping()
    pg.restart()
    assert pg.psql("update t set v = v + 1 returning v") == "42"
    pg.restart()
    assert pg.psql("select v from t") == "42"


def test_servers_pick_distinct_free_ports():
    a, b = RedisServer(), PostgresServer()
    try:
        assert a.port != b.port
        assert a.port not in (6379, 5432) or b.port not in (6379, 5432)
    finally:
        a.cleanup()
        b.cleanup()


def test_redis_server_with_persistence_keeps_data_across_a_crash():
    srv = RedisServer(args=["--appendonly", "yes", "--appendfsync", "always"])
    try:
        srv.start()
        assert srv.cli("incrby", "request_count", "41") == "41"
        srv.kill()
        srv.restart()
        assert srv.cli("incr", "request_count") == "42"
    finally:
        srv.cleanup()

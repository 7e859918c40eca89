"""The images: the tally image is small, FROM scratch, non-root, stops on
SIGTERM with status 0; the Redis and PostgreSQL images run as non-root."""

import io
import subprocess
import tarfile
import time

from podman_helpers import MEASURED, free_port, http_get, run, wait_http

TALLY = "localhost/tally:latest"
LIMIT = 20_000_000  # bytes, as `podman image inspect --format '{{.Size}}'` counts them


def inspect(image, fmt):
    return run(["podman", "image", "inspect", "--format", fmt, image]).stdout.strip()


def test_tally_image_size(images):
    size = int(inspect(TALLY, "{{.Size}}"))
    MEASURED["tally image size"] = "%d bytes (%.1f MB, %.1f MiB)" % (size, size / 1e6, size / 2**20)
    assert size <= LIMIT, "tally image is %d bytes, over %d" % (size, LIMIT)


def test_tally_image_config(images):
    assert inspect(TALLY, "{{.Config.User}}") == "10001:10001"
    assert inspect(TALLY, "{{.Config.StopSignal}}") == "SIGTERM"
    assert "8080/tcp" in inspect(TALLY, "{{.Config.ExposedPorts}}")
    assert inspect(TALLY, "{{json .Config.Entrypoint}}") == '["/usr/local/bin/tallyd"]'
    # Configured by the environment alone: no arguments baked in.
    assert inspect(TALLY, "{{json .Config.Cmd}}") in ("null", "[]")
    out = run(["podman", "run", "--rm", TALLY, "--version"]).stdout
    assert out.startswith("tallyd "), out


def test_tally_image_contents(images):
    """One layer FROM scratch: the programs, their libraries, the loader and
    the user database; nothing else."""
    assert inspect(TALLY, "{{len .RootFS.Layers}}") == "1"
    cid = run(["podman", "create", TALLY]).stdout.strip()
    try:
        data = subprocess.run(["podman", "export", cid], capture_output=True, timeout=120,
                              check=True).stdout
    finally:
        run(["podman", "rm", cid])
    names = set()
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        for m in t.getmembers():
            if m.isfile():
                names.add(m.name.lstrip("./"))
    programs = {"usr/local/bin/tallyd", "usr/local/bin/tally-healthcheck", "bin/sh"}
    etc = {"etc/passwd", "etc/group", "etc/nsswitch.conf"}
    libs = {n for n in names if n.startswith(("lib/", "lib64/", "usr/lib/"))}
    # Files podman itself puts into every container it creates.
    runtime = {n for n in names if n in ("etc/hosts", "etc/resolv.conf", "run/.containerenv", "etc/hostname")}
    assert programs | etc <= names
    assert names - programs - etc - libs - runtime == set(), sorted(names)
    assert "lib64/ld-linux-x86-64.so.2" in libs or any("ld-linux" in n for n in libs)
    assert any(n.endswith("/libpq.so.5") for n in libs)
    assert any(n.endswith("/libhiredis.so.0.14") for n in libs)
    assert any(n.endswith("/libuv.so.1") for n in libs)


def test_tally_container_runs_as_non_root_and_stops_on_sigterm(images):
    """Memory backend, host network on a port of its own; the process in
    the container has uid 10001, and `podman stop` (SIGTERM) ends it with
    status 0 after a graceful shutdown."""
    port = free_port()
    name = "tally-image-test"
    run(["podman", "rm", "-f", name], check=False)
    run(["podman", "run", "-d", "--name", name, "--network", "host",
         "-e", "TALLY_HOST=127.0.0.1", "-e", "PORT=%d" % port, TALLY])
    try:
        wait_http("http://127.0.0.1:%d/healthz" % port, timeout=30)
        status, body = http_get("http://127.0.0.1:%d/" % port)
        assert status == 200 and '"request_num":1' in body, (status, body)
        pid = int(run(["podman", "inspect", "-f", "{{.State.Pid}}", name]).stdout)
        with open("/proc/%d/status" % pid) as f:
            ids = {line.split(":")[0]: line.split()[1:] for line in f if line.startswith(("Uid", "Gid"))}
        assert ids["Uid"] == ["10001"] * 4 and ids["Gid"] == ["10001"] * 4, ids
        # The liveness command podman runs for play kube works in the image.
        assert run(["podman", "exec", name, "/bin/sh", "-c",
                    "/usr/local/bin/tally-healthcheck %d /healthz || exit 1" % port]).returncode == 0
        bad = run(["podman", "exec", name, "/usr/local/bin/tally-healthcheck", "%d" % port, "/nope"],
                  check=False)
        assert bad.returncode == 1 and "404" in bad.stderr, bad
        t = time.monotonic()
        run(["podman", "stop", "-t", "15", name], timeout=60)
        stopped_in = time.monotonic() - t
        assert run(["podman", "inspect", "-f", "{{.State.ExitCode}}", name]).stdout.strip() == "0"
        logs = run(["podman", "logs", name]).stdout
        assert "SIGTERM" in logs and "stopped (exit status 0)" in logs, logs[-2000:]
        assert stopped_in < 10, "SIGTERM took %.1f s" % stopped_in
    finally:
        run(["podman", "rm", "-f", name], check=False)


def test_service_images_run_as_non_root(images):
    for image, user in (("localhost/tally-redis:latest", "redis"), ("localhost/tally-postgres:latest", "postgres")):
        assert inspect(image, "{{.Config.User}}") == "999:999", image
        out = run(["podman", "run", "--rm", "--entrypoint", "id", image]).stdout
        assert out.startswith("uid=999(%s) gid=999(%s)" % (user, user)), out
    # Redis keeps nothing unless told: no RDB snapshots, no append-only file.
    conf = run(["podman", "run", "--rm", "--entrypoint", "cat", "localhost/tally-redis:latest",
                "/etc/redis/tally.conf"]).stdout.split("\n")
    assert 'save ""' in conf and "appendonly no" in conf, conf
    # Neither image declares a VOLUME (which podman would keep as an
    # anonymous volume after --down).
    for image in ("localhost/tally-redis:latest", "localhost/tally-postgres:latest", "localhost/tally:latest"):
        assert inspect(image, "{{json .Config.Volumes}}") in ("null", "{}"), image

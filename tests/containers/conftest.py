"""Fixtures for the container tests: podman, the images, play kube, cleanup.

Run as root on Debian 12:  /usr/bin/python3 -m pytest tests/containers -q

What the session does, once:
  * installs podman (and ab, jq, debootstrap) with apt-get when missing and
    writes /etc/containers/containers.conf when there is none (the recipe
    of shared/NOTES.md: runc, cgroupfs, file events);
  * makes docker.io/library/debian:bookworm-slim with
    containers/make-debian-base.sh when podman's store lacks it (no registry
    is needed; the image stays in the store for later runs);
  * builds localhost/tally, localhost/tally-redis and localhost/tally-postgres
    (podman's layer cache makes a rebuild of unchanged files take seconds);
  * fails at once, naming them, if ports 8080, 8081, 6379 or 5432 are taken;
  * at the end, and after any failure, takes down every pod the playfiles
    start (`podman play kube --down`), whatever state they are in.
Measurements (sizes, timings, ab and jq results) are printed at the end.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from podman_helpers import (
    ALL_PLAYFILES,
    BASE_IMAGE,
    CONTAINERS_CONF,
    IMAGES,
    MEASURED,
    PORTS,
    REPO,
    apt_install,
    package_installed,
    down,
    podman_state,
    port_taken,
    run,
)


# -- session fixtures ----------------------------------------------------------


@pytest.fixture(scope="session")
def neutral_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("play")


@pytest.fixture(scope="session")
def podman():
    """podman (and ab, jq) installed and configured as shared/NOTES.md says."""
    if os.geteuid() != 0:
        pytest.skip("the container tests install packages and run podman as root")
    t = time.monotonic()
    # Checked package by package, not by the podman binary alone: a machine
    # can have podman without the runtime the configuration names (CI met
    # one: "default OCI runtime "runc" not found").
    wanted = ["podman", "runc", "conmon", "catatonit", "containernetworking-plugins", "iptables",
              "uidmap", "slirp4netns", "fuse-overlayfs", "apache2-utils", "jq", "debootstrap"]
    missing = [pkg for pkg in wanted if not package_installed(pkg)]
    if missing:
        apt_install(*missing)
    conf = Path("/etc/containers/containers.conf")
    if not conf.exists():
        conf.parent.mkdir(parents=True, exist_ok=True)
        import resource

        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        hard = 1048576 if hard == resource.RLIM_INFINITY else hard
        conf.write_text(CONTAINERS_CONF.format(n=hard))
    MEASURED["setup (install podman etc.)"] = "%.1f s%s" % (
        time.monotonic() - t, "" if missing else " (nothing to install)")
    run(["podman", "info"], timeout=60)
    return "podman"


@pytest.fixture(scope="session")
def base_image(podman):
    """The Debian base image, made locally with debootstrap when missing."""
    exists = run(["podman", "image", "exists", BASE_IMAGE], check=False).returncode == 0
    if not exists:
        t = time.monotonic()
        run(["sh", str(REPO / "containers" / "make-debian-base.sh")], timeout=900)
        MEASURED["base image (debootstrap + import)"] = "%.1f s" % (time.monotonic() - t)
    else:
        MEASURED["base image"] = "already in podman's store"
    return BASE_IMAGE


@pytest.fixture(scope="session")
def images(base_image):
    """Build every image once per session; returns their tags."""
    for tag, (containerfile, context) in IMAGES.items():
        t = time.monotonic()
        run(["podman", "build", "-t", tag, "-f", str(containerfile), str(context)], timeout=900)
        MEASURED["build %s" % tag] = "%.1f s" % (time.monotonic() - t)
    return list(IMAGES)


@pytest.fixture(scope="session")
def ports_free(podman, neutral_dir):
    """The fixed ports of the playfiles must be free; leftovers of an earlier
    run of these playfiles are taken down first."""
    for pf in ALL_PLAYFILES:
        down(pf, neutral_dir, check=False)
    taken = [p for p in PORTS if port_taken(p)]
    if taken:
        detail = run(["ss", "-ltnp"], check=False).stdout
        pytest.fail(
            "ports needed by the playfiles are taken: %s. The playfiles bind them on the "
            "host's network; stop whatever listens there and run again.\n%s"
            % (", ".join("%d (%s)" % (p, PORTS[p]) for p in taken), detail),
            pytrace=False,
        )


@pytest.fixture(scope="session", autouse=True)
def ports_first(request):
    """When a playfile test is to run, check the ports before anything is
    built, so that a taken port fails the run in seconds, not minutes."""
    if any("stack" in item.fixturenames for item in request.session.items):
        request.getfixturevalue("ports_free")


@pytest.fixture(scope="session", autouse=True)
def cleanup_at_end(request, tmp_path_factory):
    """Whatever happens, no pod of ours outlives the session."""
    yield
    if shutil.which("podman") is None:
        return
    cwd = tmp_path_factory.getbasetemp()
    for pf in ALL_PLAYFILES:
        subprocess.run(["podman", "play", "kube", "--down", str(pf)], cwd=cwd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=180)


@pytest.fixture
def stack(ports_free, images, neutral_dir):
    """Everything needed to play the playfiles; takes down what a test
    started if the test failed halfway."""
    before = podman_state()
    yield {"cwd": neutral_dir, "before": before}
    for pf in ALL_PLAYFILES:
        down(pf, neutral_dir, check=False)


def pytest_terminal_summary(terminalreporter):
    if MEASURED:
        terminalreporter.section("container measurements")
        for k, v in MEASURED.items():
            terminalreporter.write_line("%s: %s" % (k, v))

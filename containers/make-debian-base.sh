#!/bin/sh
# Make the Debian 12 base image that every Containerfile here starts FROM,
# docker.io/library/debian:bookworm-slim, on a machine that reaches Debian's
# package mirror but no container registry: debootstrap a minimal bookworm,
# trim it the way the slim image is trimmed, and `podman import` it under
# the upstream name, so `FROM docker.io/library/debian:bookworm-slim`
# resolves locally without a pull.
#
#   containers/make-debian-base.sh           # does nothing if the image exists
#   containers/make-debian-base.sh --force   # make it again
#
# Environment: MIRROR (default: the first URIs: line of
# /etc/apt/sources.list.d/debian.sources, else http://deb.debian.org/debian),
# IMAGE (default docker.io/library/debian:bookworm-slim). Needs root,
# podman and debootstrap (installed with apt-get when missing). ~1-2 min.
set -eu
IMAGE=${IMAGE:-docker.io/library/debian:bookworm-slim}

if [ "${1:-}" != "--force" ] && podman image exists "$IMAGE"; then
    echo "make-debian-base: $IMAGE already present"
    exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends debootstrap
fi

if [ -z "${MIRROR:-}" ]; then
    MIRROR=$(awk '$1 == "URIs:" { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
fi
MIRROR=${MIRROR:-http://deb.debian.org/debian}

root=$(mktemp -d /var/tmp/debian-base.XXXXXX)
trap 'rm -rf "$root"' EXIT INT TERM

echo "make-debian-base: debootstrap bookworm from $MIRROR"
debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$root.log" 2>&1 || {
    tail -n 30 "$root.log" >&2
    rm -f "$root.log"
    exit 1
}
rm -f "$root.log"

# apt inside the image uses the same sources as this machine (they are the
# reachable ones), security updates included.
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/debian.sources"
    rm -f "$root/etc/apt/sources.list"
fi

# Trim like the slim image: no documentation, manual pages or translations,
# now or in packages installed later; no package files kept after installs.
cat > "$root/etc/dpkg/dpkg.cfg.d/slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
CFG
cat > "$root/etc/apt/apt.conf.d/slim" <<'CFG'
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
CFG
find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root/usr/share/man/"* "$root/usr/share/info/"* "$root/usr/share/locale/"* \
    "$root/usr/share/groff/"* "$root/usr/share/lintian/"*
rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/cache/apt/"*.bin \
    "$root/var/lib/apt/lists/"* "$root/var/log/"*.log "$root/var/log/apt/"*

tar --numeric-owner -C "$root" -c . | podman import --change 'CMD ["bash"]' - "$IMAGE" >/dev/null
echo "make-debian-base: imported $IMAGE ($(podman image inspect --format '{{.Size}}' "$IMAGE") bytes)"

# shellcheck shell=sh
# What scripts/run.sh, test.sh, setup.sh and fuzz.sh share, sourced from the
# repository's root (they cd there first):
#   say TEXT...                    one progress line on stderr ("tally: TEXT")
#   step NAME WHAT CMD [ARG...]    run CMD with its output in .logs/NAME.log;
#                                  on failure name the step, show the log's
#                                  last lines and exit with CMD's status
#   install_packages WHO PKG...    apt-get install the PKGs not yet installed
#   ensure_build DIR [-Dopt=v...]  a meson build directory DIR of this tree
#                                  with those options (scripts/buildstate.py
#                                  says whether it is, needs reconfiguring,
#                                  or must be made again)
# Progress and errors go to stderr, so stdout stays tallyd's JSON log
# (scripts/run.sh > tally.log). Nothing here exits silently: a failure
# always ends in a "tally: FAILED: ..." line and a non-zero status.

TALLY_LOGS=${TALLY_LOGS:-$PWD/.logs}

say() {
    printf 'tally: %s\n' "$*" >&2
}

# fail WHAT STATUS LOG: the end of every failed step.
fail() {
    say "FAILED: $1 (exit status $2)"
    if [ -s "$3" ]; then
        # ninja's progress lines ("[12/29] Compiling ...") say nothing of
        # what failed: leave them out.
        say "last lines of $3:"
        grep -v '^\[[0-9]*/[0-9]*\] ' "$3" | tail -n "${TALLY_FAIL_LINES:-30}" | sed 's/^/    /' >&2
    fi
    say "the whole output of that step is in $3"
    exit "$2"
}

step() {
    _name=$1
    _what=$2
    shift 2
    mkdir -p "$TALLY_LOGS"
    _log=$TALLY_LOGS/$_name.log
    say "$_what"
    _rc=0
    "$@" >"$_log" 2>&1 || _rc=$?
    [ "$_rc" -eq 0 ] || fail "$_what" "$_rc" "$_log"
}

missing_packages() {
    # One dpkg-query for all: a re-run with everything installed stays quick.
    # Packages it does not know are printed with "unknown" status, absent
    # ones not at all; only "install ok installed" counts.
    _have=$(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null |
        sed -n 's/^\([^ ]*\) install ok installed$/\1/p')
    for _p in "$@"; do
        case " $(echo "$_have" | tr '\n' ' ') " in
        *" $_p "*) ;;
        *) printf "%s " "$_p" ;;
        esac
    done
}

install_packages() {
    _who=$1
    shift
    _missing=$(missing_packages "$@")
    [ -n "$_missing" ] || return 0
    if [ "$(id -u)" -eq 0 ]; then
        _sudo=""
    elif command -v sudo >/dev/null 2>&1; then
        _sudo="sudo"
    else
        say "FAILED: installing packages: not root and no sudo; as root: apt-get install $_missing"
        exit 1
    fi
    # shellcheck disable=SC2086
    set -- $_missing
    say "$_who: installing $# Debian packages and what they depend on: $*"
    # A fresh machine may still be running its own apt (unattended-upgrades):
    # wait for the lock rather than fail.
    step apt-update "$_who: apt-get update" \
        $_sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q
    say "$_who: apt-get install ($# packages)"
    _log=$TALLY_LOGS/apt-install.log
    _rc=0
    $_sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
        install -y -q --no-install-recommends "$@" >"$_log" 2>&1 || _rc=$?
    [ "$_rc" -eq 0 ] && return 0
    # apt-get update succeeds when a mirror is unreachable (it only warns);
    # its warnings are then the reason the install cannot find a package.
    if grep -qE '^(Err|W|E):' "$TALLY_LOGS/apt-update.log"; then
        say "apt-get update had warned:"
        grep -E '^(Err|W|E):' "$TALLY_LOGS/apt-update.log" | tail -n 8 | sed 's/^/    /' >&2
    fi
    fail "$_who: apt-get install ($# packages)" "$_rc" "$_log"
}

ensure_build() {
    _dir=$1
    shift
    mkdir -p "$TALLY_LOGS"
    case $(python3 scripts/buildstate.py "$_dir" "$@") in
    ok) return 0 ;;
    reconfigure)
        # This tree's build directory, with other options (or half made, or
        # by another meson): set them; if meson refuses, make it again.
        # (meson 1.0's `setup --reconfigure -Dopt=v` can keep the old value
        # of a base option such as b_sanitize; `configure` sets it.)
        say "configuring $_dir/ again (meson configure $*)"
        _rc=0
        { meson configure "$_dir" "$@" && meson setup --reconfigure "$_dir"; } \
            >"$TALLY_LOGS/configure-$_dir.log" 2>&1 || _rc=$?
        [ "$_rc" -eq 0 ] && [ "$(python3 scripts/buildstate.py "$_dir" "$@")" = ok ] && return 0
        say "meson could not reconfigure $_dir/ ($TALLY_LOGS/configure-$_dir.log); making it again"
        ;;
    *)
        [ -e "$_dir" ] && say "$_dir/ is not a build directory of this tree: making it again"
        ;;
    esac
    # Generated, never edited by hand: safe to replace.
    rm -rf "$_dir"
    step "configure-$_dir" "configuring $_dir/ (meson setup $*)" meson setup "$_dir" "$@"
}

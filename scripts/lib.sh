# shellcheck shell=sh
# What scripts/run.sh, test.sh, setup.sh and fuzz.sh share, sourced from the
# repository's root (they cd there first):
#   say TEXT...                    one progress line on stderr ("tally: TEXT")
#   step NAME WHAT CMD [ARG...]    run CMD with its output in .logs/NAME.log;
#                                  on failure name the step, show the log's
#                                  last lines and exit with CMD's status
#   install_packages WHO PKG...    apt-get install the PKGs not yet installed
#   as_root CMD [ARG...]           CMD as root, through sudo unless root
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

# logfile NAME: the path of .logs/NAME.log, made empty; a log that cannot
# be written (.logs/ left by a run as another user) fails here, by name,
# rather than show that other run's output as this step's.
logfile() {
    _lf=$TALLY_LOGS/$1.log
    if ! { mkdir -p "$TALLY_LOGS" && : >"$_lf"; } 2>/dev/null; then
        say "FAILED: cannot write $_lf (left by a run as another user? remove $TALLY_LOGS)"
        exit 1
    fi
    echo "$_lf"
}

step() {
    _name=$1
    _what=$2
    shift 2
    _log=$(logfile "$_name") || exit 1
    say "$_what"
    _rc=0
    "$@" >"$_log" 2>&1 || _rc=$?
    [ "$_rc" -eq 0 ] || fail "$_what" "$_rc" "$_log"
}

# as_root CMD [ARG...]: CMD as root (through sudo unless root already).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing_packages() {
    # One dpkg-query for all: a re-run with everything installed stays quick.
    # Packages it does not know are printed with "unknown" status, absent
    # ones not at all; "install ok installed" and "hold ok installed" count.
    _have=$(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null |
        sed -n 's/^\([^ ]*\) [a-z]* ok installed$/\1/p')
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
    if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
        say "FAILED: installing packages: not root and no sudo; as root: apt-get install $_missing"
        exit 1
    fi
    # shellcheck disable=SC2086
    set -- $_missing
    say "$_who: installing $# Debian packages and what they depend on: $*"
    # A fresh machine may still be running its own apt (apt-daily,
    # unattended-upgrades): wait for its locks rather than fail. Install
    # waits by itself (DPkg::Lock::Timeout); update does not, so it is
    # tried again while the lists' lock is held, for up to 5 minutes.
    say "$_who: apt-get update"
    _log=$(logfile apt-update) || exit 1
    _tries=0
    while :; do
        _rc=0
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$_log" 2>&1 || _rc=$?
        if [ "$_rc" -eq 0 ] || [ "$_tries" -ge 60 ] ||
            ! grep -qE 'Could not get lock|Unable to lock directory' "$_log"; then
            break
        fi
        [ "$_tries" -eq 0 ] && say "$_who: another apt holds its lock; waiting (up to 5 min)"
        _tries=$((_tries + 1))
        sleep 5
    done
    [ "$_rc" -eq 0 ] || fail "$_who: apt-get update" "$_rc" "$_log"
    say "$_who: apt-get install ($# packages)"
    _log=$(logfile apt-install) || exit 1
    _rc=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
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
    case $(python3 scripts/buildstate.py "$_dir" "$@") in
    ok) return 0 ;;
    reconfigure)
        # This tree's build directory, with other options (or half made, or
        # by another meson): set them; if meson refuses, make it again.
        # (meson 1.0's `setup --reconfigure -Dopt=v` can keep the old value
        # of a base option such as b_sanitize; `configure` sets it.)
        say "configuring $_dir/ again (meson configure $*)"
        _log=$(logfile "reconfigure-$_dir") || exit 1
        _rc=0
        { meson configure "$_dir" "$@" && meson setup --reconfigure "$_dir"; } >"$_log" 2>&1 || _rc=$?
        [ "$_rc" -eq 0 ] && [ "$(python3 scripts/buildstate.py "$_dir" "$@")" = ok ] && return 0
        say "meson could not reconfigure $_dir/ (its output: $_log); making it again"
        ;;
    *)
        [ -e "$_dir" ] && say "$_dir/ is not a complete build directory of this tree: making it again"
        ;;
    esac
    # Generated, never edited by hand: safe to replace.
    if ! rm -rf "$_dir" 2>/dev/null; then
        say "FAILED: cannot remove $_dir/ (left by a run as another user?)"
        exit 1
    fi
    step "configure-$_dir" "configuring $_dir/ (meson setup $*)" meson setup "$_dir" "$@"
    if [ "$(python3 scripts/buildstate.py "$_dir" "$@")" != ok ]; then
        # Only a meson that reports options differently than 1.0 does gets
        # here; building is still right, but say it rather than loop.
        say "warning: $_dir/ does not report the options $* after setup; building anyway"
    fi
}

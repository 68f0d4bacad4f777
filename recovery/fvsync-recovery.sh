#!/bin/sh
# fvsync-recovery.sh: start fvsync from the macOS Recovery terminal.
#
#   sh fvsync-recovery.sh [--url URL] [diagnose|reconcile|verify|undo|users|volumes] [fvsync args...]
#
# Finds the fvsync binary beside this script (a USB stick), or downloads it from
# URL with curl, checks its SHA-256 against SHA256SUMS, copies it to a fresh
# temporary folder, makes it executable, and runs it. The command defaults to
# `reconcile`. Without --user it lists the users and asks which one.
#
# This script never reads, stores or passes a password: fvsync asks for them itself.
# POSIX sh only (recoveryOS has no bash guarantees). See recovery/README.md.

set -u

PROG=fvsync-recovery

# Recovery's Terminal opens at 80 columns: messages wrap at word boundaries,
# continued lines indented by two spaces (awk: recoveryOS has no fold or fmt
# guarantee).
wrap80() {
    awk 'BEGIN { w = 80 }
    {
        line = ""; n = split($0, words, " ")
        for (i = 1; i <= n; i++) {
            if (line == "") { line = words[i] }
            else if (length(line) + 1 + length(words[i]) <= w) { line = line " " words[i] }
            else { print line; line = "  " words[i] }
        }
        print line
    }'
}
say() { printf '%s: %s\n' "$PROG" "$*" | wrap80 >&2; }
die() {
    # die CODE MESSAGE...
    code=$1
    shift
    printf '%s: error: %s\n' "$PROG" "$*" | wrap80 >&2
    exit "$code"
}

usage() {
    cat >&2 <<'EOF'
Usage: sh fvsync-recovery.sh [--url URL] [COMMAND] [fvsync args...]

COMMAND is diagnose, reconcile (the default), verify, undo, users or volumes.
Examples:
  sh fvsync-recovery.sh diagnose --user alice
  sh fvsync-recovery.sh reconcile --user alice
  sh fvsync-recovery.sh --url https://it.example.com/fvsync diagnose
Without --user, the script lists the users and asks which one.
The fvsync binary and SHA256SUMS come from this script's folder, or from URL.
EOF
}

# ---------------------------------------------------------------------------
# 1. Read the command line. Everything except --url goes to fvsync unchanged;
#    the positional parameters are rebuilt in place (POSIX sh has no arrays).

URL=
CMD=
HAVE_USER=
HELP=
SIM_DIR=
DISKUTIL=
DISKUTIL_TIMEOUT=
VOLUME=

n=$#
while [ "$n" -gt 0 ]; do
    a=$1
    shift
    n=$((n - 1))
    case $a in
        --)
            # Everything after -- goes to fvsync as is.
            set -- "$@" "$a"
            while [ "$n" -gt 0 ]; do
                set -- "$@" "$1"
                shift
                n=$((n - 1))
            done
            ;;
        --url)
            [ "$n" -gt 0 ] || { usage; die 2 "--url needs a URL"; }
            URL=$1
            shift
            n=$((n - 1))
            ;;
        --url=*)
            URL=${a#--url=}
            ;;
        -h | --help)
            HELP=1
            set -- "$@" "$a"
            ;;
        --user | --simulate | --diskutil | --diskutil-timeout | --volume)
            # fvsync options that take a value: keep the value with its option.
            [ "$n" -gt 0 ] || { usage; die 2 "$a needs a value"; }
            v=$1
            shift
            n=$((n - 1))
            case $a in
                --user) HAVE_USER=1 ;;
                --simulate) SIM_DIR=$v ;;
                --diskutil) DISKUTIL=$v ;;
                --diskutil-timeout) DISKUTIL_TIMEOUT=$v ;;
                --volume) VOLUME=$v ;;
            esac
            set -- "$@" "$a" "$v"
            ;;
        --user=*) HAVE_USER=1; set -- "$@" "$a" ;;
        --simulate=*) SIM_DIR=${a#--simulate=}; set -- "$@" "$a" ;;
        --diskutil=*) DISKUTIL=${a#--diskutil=}; set -- "$@" "$a" ;;
        --diskutil-timeout=*) DISKUTIL_TIMEOUT=${a#--diskutil-timeout=}; set -- "$@" "$a" ;;
        --volume=*) VOLUME=${a#--volume=}; set -- "$@" "$a" ;;
        --password-stdin)
            set -- "$@" "$a"
            ;;
        --pass* | --pw* | -p)
            # Never echoed back (nor passed on, nor printed in "Running:").
            usage
            die 2 "fvsync never takes a password on the command line: leave it out, fvsync asks for it at a prompt. If you typed a password there, clear it from the shell's history (type history -c)"
            ;;
        -*)
            set -- "$@" "$a"
            ;;
        *)
            if [ -z "$CMD" ]; then
                case $a in
                    diagnose | reconcile | verify | undo | users | volumes) CMD=$a ;;
                    *)
                        usage
                        die 2 "unknown command '$a' (use diagnose, reconcile, verify, undo, users or volumes; the user goes after --user)"
                        ;;
                esac
            else
                # A word after the command: never a password (not repeated here).
                usage
                die 2 "unexpected word after the command (not repeated here, in case it is a password): fvsync never takes a password on the command line; the user goes after --user. If you typed a password there, clear it from the shell's history (type history -c)"
            fi
            ;;
    esac
done

if [ -z "$CMD" ]; then
    if [ -n "$HELP" ] && [ $# -eq 1 ]; then
        usage
        exit 0
    fi
    CMD=reconcile
fi

# ---------------------------------------------------------------------------
# 2. Which binary for this system.

case $(uname -s 2>/dev/null) in
    Darwin) BIN_NAME=fvsync-macos-universal ;;
    Linux) BIN_NAME=fvsync-linux-x86_64 ;;
    *) die 2 "this system ($(uname -s 2>/dev/null)) has no fvsync binary: use a Mac in Recovery" ;;
esac

# ---------------------------------------------------------------------------
# 3. A fresh temporary folder (in Recovery, /tmp is in memory and gone at restart).

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fvsync.XXXXXX") || die 1 "cannot create a temporary folder"
chmod 700 "$WORK" 2>/dev/null

cleanup_and_die() {
    code=$1
    shift
    rm -rf "$WORK"
    die "$code" "$@"
}

# ---------------------------------------------------------------------------
# 4. Get the binary and SHA256SUMS into $WORK.

if [ -n "$URL" ]; then
    URL=${URL%/}
    command -v curl >/dev/null 2>&1 || cleanup_and_die 1 "curl is not available: use the USB stick instead"
    case $URL in
        https://*) ;;
        *) say "warning: $URL is not https; the checksum then only protects against a damaged download" ;;
    esac
    say "Downloading $BIN_NAME and SHA256SUMS from $URL ..."
    curl -fsSL -o "$WORK/$BIN_NAME" "$URL/$BIN_NAME" ||
        cleanup_and_die 1 "could not download $URL/$BIN_NAME (check the network: Wi-Fi menu at the top right, and the URL)"
    curl -fsSL -o "$WORK/SHA256SUMS" "$URL/SHA256SUMS" ||
        cleanup_and_die 1 "could not download $URL/SHA256SUMS (check the URL)"
else
    case $0 in
        */*) HERE=$(cd "${0%/*}" && pwd) ;;
        *) HERE=$(pwd) ;;
    esac
    [ -n "$HERE" ] || cleanup_and_die 1 "cannot find the folder of this script"
    say "Using fvsync from $HERE"
    [ -f "$HERE/$BIN_NAME" ] ||
        cleanup_and_die 2 "$HERE/$BIN_NAME not found (the USB stick must hold $BIN_NAME next to fvsync-recovery.sh; or use --url URL)"
    [ -f "$HERE/SHA256SUMS" ] ||
        cleanup_and_die 2 "$HERE/SHA256SUMS not found: refusing to run an unchecked binary"
    # Copy first, then check the copy: the file that is checked is the file that runs.
    cp "$HERE/$BIN_NAME" "$WORK/$BIN_NAME" || cleanup_and_die 1 "cannot copy $BIN_NAME to $WORK"
    cp "$HERE/SHA256SUMS" "$WORK/SHA256SUMS" || cleanup_and_die 1 "cannot copy SHA256SUMS to $WORK"
fi

# ---------------------------------------------------------------------------
# 5. Check the SHA-256. Refuse a mismatch or a missing line (exit 2).

# The expected hash: the first line whose file name is exactly $BIN_NAME
# ("HASH  NAME" or "HASH *NAME", as sha256sum and shasum write them).
EXPECTED=$(awk -v name="$BIN_NAME" '
    { sub(/\r$/, "") }
    NF == 2 { f = $2; sub(/^\*/, "", f); if (f == name) { print tolower($1); exit } }
' "$WORK/SHA256SUMS")

case $EXPECTED in
    "")
        cleanup_and_die 2 "checksum: SHA256SUMS has no line for $BIN_NAME: refusing to run it (nothing was run)"
        ;;
esac
if [ ${#EXPECTED} -ne 64 ] || ! printf '%s' "$EXPECTED" | grep -q '^[0-9a-f]*$'; then
    cleanup_and_die 2 "checksum: the SHA256SUMS line for $BIN_NAME is malformed: refusing to run it (nothing was run)"
fi

# The actual hash, with the first tool that works (recoveryOS may lack some:
# shasum is a Perl script, and Recovery may have no Perl).
sha256_of() {
    h=
    if command -v shasum >/dev/null 2>&1; then
        h=$(shasum -a 256 <"$1" 2>/dev/null | awk '{ print tolower($1) }')
    fi
    if [ ${#h} -ne 64 ] && command -v sha256sum >/dev/null 2>&1; then
        h=$(sha256sum <"$1" 2>/dev/null | awk '{ print tolower($1) }')
    fi
    if [ ${#h} -ne 64 ] && command -v openssl >/dev/null 2>&1; then
        h=$(openssl dgst -sha256 <"$1" 2>/dev/null | awk '{ print tolower($NF) }')
    fi
    [ ${#h} -eq 64 ] || return 1
    printf '%s\n' "$h"
}

ACTUAL=$(sha256_of "$WORK/$BIN_NAME") ||
    cleanup_and_die 1 "checksum: no SHA-256 tool works here (tried shasum, sha256sum, openssl): refusing to run an unchecked binary"

if [ "$ACTUAL" != "$EXPECTED" ]; then
    say "expected SHA-256 $EXPECTED"
    say "actual   SHA-256 $ACTUAL"
    cleanup_and_die 2 "checksum mismatch for $BIN_NAME: the file is damaged or not the published one; refusing to run it (nothing was run). Copy it again or download it again."
fi
say "Checksum OK ($BIN_NAME)"

# ---------------------------------------------------------------------------
# 6. Make it runnable: executable, and no quarantine flag (ignore errors).

FVSYNC=$WORK/fvsync
mv "$WORK/$BIN_NAME" "$FVSYNC" || cleanup_and_die 1 "cannot prepare $FVSYNC"
chmod 755 "$FVSYNC" || cleanup_and_die 1 "cannot make $FVSYNC executable"
if command -v xattr >/dev/null 2>&1; then
    xattr -d com.apple.quarantine "$FVSYNC" >/dev/null 2>&1 || :
fi

# ---------------------------------------------------------------------------
# 7. Which user? (only for the commands that work on one user)

list_users() {
    set -- users
    [ -n "$SIM_DIR" ] && set -- "$@" --simulate "$SIM_DIR"
    [ -n "$DISKUTIL" ] && set -- "$@" --diskutil "$DISKUTIL"
    [ -n "$DISKUTIL_TIMEOUT" ] && set -- "$@" --diskutil-timeout "$DISKUTIL_TIMEOUT"
    [ -n "$VOLUME" ] && set -- "$@" --volume "$VOLUME"
    "$FVSYNC" "$@"
}

# The short names in the first column of `fvsync users`' tables, one a line.
short_names() {
    awk '
        /^  user  / { inside = 1; next }
        /^[[:space:]]*$/ { inside = 0; next }
        inside && /^  [^ ]/ { print $1 }
    '
}

case $CMD in
    diagnose | reconcile | verify | undo)
        if [ -z "$HAVE_USER" ] && [ -z "$HELP" ]; then
            say "No --user given. These are the Mac's users:"
            echo >&2
            rc=0
            LIST=$(list_users) || rc=$?
            printf '%s\n' "$LIST" >&2
            echo >&2
            if [ "$rc" -ne 0 ]; then
                cleanup_and_die "$rc" "fvsync could not list the users (exit $rc); see its message above"
            fi
            NAMES=$(printf '%s\n' "$LIST" | short_names)
            if ! (true </dev/tty) 2>/dev/null; then
                cleanup_and_die 2 "no terminal to ask on: add --user NAME (a short name from the first column above)"
            fi
            tries=0
            while :; do
                tries=$((tries + 1))
                printf 'Which user? Type the short name from the first column, then Return: ' >/dev/tty
                ANSWER=
                IFS= read -r ANSWER </dev/tty || ANSWER=
                # Trim spaces and tabs around the name.
                ANSWER=$(printf '%s' "$ANSWER" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
                [ -n "$ANSWER" ] || cleanup_and_die 2 "no user given: nothing was run"
                # No names read from the list (another format): fvsync checks the name itself.
                [ -n "$NAMES" ] || break
                printf '%s\n' "$NAMES" | grep -Fqx -e "$ANSWER" && break
                LIKE=$(printf '%s\n' "$NAMES" | awk -v a="$ANSWER" 'tolower($0) == tolower(a) { print; exit }')
                if [ -n "$LIKE" ]; then
                    say "'$ANSWER' is not in the first column above; did you mean $LIKE?"
                else
                    say "'$ANSWER' is not in the first column above (the short names are: $(printf '%s' "$NAMES" | tr '\n' ' '))"
                fi
                [ "$tries" -lt 3 ] || cleanup_and_die 2 "no user from the list was given: nothing was run"
            done
            set -- "$@" --user "$ANSWER"
        fi
        ;;
esac

# ---------------------------------------------------------------------------
# 8. Run it. fvsync asks for the passwords itself (echo off).

case $CMD in
    diagnose) say "Next: fvsync checks which password each secret accepts; it changes nothing. It asks OLD twice, then NEW once." ;;
    reconcile) say "Next: fvsync asks OLD twice, then NEW twice, shows its plan and asks before changing anything." ;;
    verify) say "Next: fvsync checks one password (usually NEW) against every secret; it changes nothing." ;;
    undo) say "Next: fvsync puts the last reconcile back. It asks NEW twice, then OLD twice, and asks before changing anything." ;;
esac

# fvsync's hints ("run ... reconcile --user alice") name this script, with
# the options that choose the Mac, so that they run as printed.
quote() {
    case $1 in
        '' | *[!A-Za-z0-9_./:=@%+,-]*) printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")" ;;
        *) printf '%s' "$1" ;;
    esac
}
LAUNCHER="sh $(quote "$0")"
[ -n "$URL" ] && LAUNCHER="$LAUNCHER --url $(quote "$URL")"
[ -n "$SIM_DIR" ] && LAUNCHER="$LAUNCHER --simulate $(quote "$SIM_DIR")"
[ -n "$DISKUTIL" ] && LAUNCHER="$LAUNCHER --diskutil $(quote "$DISKUTIL")"
[ -n "$DISKUTIL_TIMEOUT" ] && LAUNCHER="$LAUNCHER --diskutil-timeout $(quote "$DISKUTIL_TIMEOUT")"
FVSYNC_LAUNCHER=$LAUNCHER
export FVSYNC_LAUNCHER
say "Running: fvsync $CMD $*"
say "(temporary copy: $FVSYNC; it is gone when the Mac restarts)"
echo >&2
exec "$FVSYNC" "$CMD" "$@"

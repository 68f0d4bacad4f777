#!/bin/sh
# stage-usb.sh DIR: put what a technician needs in Recovery onto a USB folder.
#
#   - the fvsync binaries found in dist/ (fvsync-macos-universal, fvsync-linux-x86_64);
#     if there is none, `cargo build --release` and target/release/fvsync staged as
#     fvsync-linux-x86_64 (for rehearsals on Linux only: a Mac needs the macOS binary);
#   - recovery/fvsync-recovery.sh;
#   - docs/runbook.md as RUNBOOK.txt;
#   - SHA256SUMS for exactly the files staged.
#
# DIR is created if needed. Other files in DIR are left alone.
set -eu

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: sh scripts/stage-usb.sh DIR   (for example /Volumes/FVSYNC)" >&2
    exit 2
fi
DEST=$1

# Work from the repository root, wherever we are called from.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

sha256_line() {
    # sha256_line FILE: prints "HASH  NAME" for FILE (NAME without its folder).
    if command -v sha256sum >/dev/null 2>&1; then
        h=$(sha256sum <"$1" | awk '{ print $1 }')
    elif command -v shasum >/dev/null 2>&1; then
        h=$(shasum -a 256 <"$1" | awk '{ print $1 }')
    else
        h=$(openssl dgst -sha256 <"$1" | awk '{ print $NF }')
    fi
    printf '%s  %s\n' "$h" "$(basename "$1")"
}

for f in recovery/fvsync-recovery.sh docs/runbook.md; do
    [ -f "$f" ] || { echo "stage-usb: $f is missing" >&2; exit 1; }
done

mkdir -p "$DEST"
# Remove what an earlier staging may have left, so SHA256SUMS and the folder agree.
rm -f "$DEST/fvsync-macos-universal" "$DEST/fvsync-linux-x86_64" "$DEST/SHA256SUMS" \
    "$DEST/fvsync-recovery.sh" "$DEST/RUNBOOK.txt"

STAGED=
for b in fvsync-macos-universal fvsync-linux-x86_64; do
    if [ -f "dist/$b" ]; then
        cp "dist/$b" "$DEST/$b"
        STAGED="$STAGED $b"
    fi
done

if [ -z "$STAGED" ]; then
    echo "stage-usb: no binary in dist/: building target/release/fvsync (cargo build --release)" >&2
    cargo build --release --bin fvsync
    cp target/release/fvsync "$DEST/fvsync-linux-x86_64"
    STAGED=" fvsync-linux-x86_64"
    echo "stage-usb: note: only the Linux binary is staged; a Mac needs dist/fvsync-macos-universal (make macos)" >&2
fi

cp recovery/fvsync-recovery.sh "$DEST/fvsync-recovery.sh"
cp docs/runbook.md "$DEST/RUNBOOK.txt"
STAGED="$STAGED fvsync-recovery.sh RUNBOOK.txt"

# Executable bits help where the file system keeps them (not on FAT/exFAT);
# fvsync-recovery.sh copies the binary and sets them itself anyway.
for f in $STAGED; do
    case $f in
        fvsync-macos-universal | fvsync-linux-x86_64 | fvsync-recovery.sh) chmod 755 "$DEST/$f" 2>/dev/null || : ;;
    esac
done

: >"$DEST/SHA256SUMS.tmp"
for f in $STAGED; do
    sha256_line "$DEST/$f" >>"$DEST/SHA256SUMS.tmp"
done
mv "$DEST/SHA256SUMS.tmp" "$DEST/SHA256SUMS"
sync 2>/dev/null || :

echo "Staged in $DEST:"
for f in $STAGED SHA256SUMS; do
    size=$(wc -c <"$DEST/$f" | tr -d ' ')
    printf '  %-24s %10s bytes\n' "$f" "$size"
done
echo "SHA256SUMS:"
sed 's/^/  /' "$DEST/SHA256SUMS"
echo "In Recovery: sh /Volumes/<USB name>/fvsync-recovery.sh diagnose   (steps: RUNBOOK.txt)"

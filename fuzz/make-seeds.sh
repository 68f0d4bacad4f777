#!/bin/sh
# Regenerates fuzz/seeds/ from tests/data/samples/ and from simulated Macs made
# by fvsync itself (every scenario), plus the emulated diskutil's outputs.
# Usage: sh fuzz/make-seeds.sh [path/to/fvsync] [path/to/fvsync-diskutil-emulator]
set -eu
cd "$(dirname "$0")/.."
FVSYNC=${1:-target/debug/fvsync}
EMU=${2:-target/debug/fvsync-diskutil-emulator}
S=fuzz/seeds
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf "$S"
mkdir -p "$S/record" "$S/shadowhash" "$S/diskutil" "$S/keybag" "$S/keychain" "$S/kerberos"
python3 - tests/data/samples/dslocal-user-jeff-10.8-pbkdf2.plist "$S/kerberos/jeff-KerberosKeys.der" <<'PY'
import plistlib, sys
r = plistlib.load(open(sys.argv[1], "rb"))
open(sys.argv[2], "wb").write(r["KerberosKeys"][0])
PY
# A HeimdalSRPKey value of the shape Heimdal writes (hdb-srp: a 512-byte
# verifier, group 1, a 16-byte salt, 4000 iterations); no real one is public.
python3 - "$S/kerberos/srp-HeimdalSRPKey.der" <<'PY'
import sys
def tlv(t, c):
    n = len(c)
    l = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([t]) + l + c
ex = lambda n, t, c: tlv(0xa0 | n, tlv(t, c))
param = tlv(0x30, ex(0, 2, b"\x01") + ex(1, 4, bytes(range(16))) + ex(2, 2, (4000).to_bytes(2, "big")))
v = bytes([0x5a]) * 512
open(sys.argv[1], "wb").write(tlv(0x30, ex(0, 4, v) + tlv(0xa1, param)))
PY
cp tests/data/samples/diskutil-*.plist "$S/diskutil/"
cp tests/data/samples/shadowhashdata-decoded.plist "$S/shadowhash/"
cp tests/data/samples/keychainbreaker-test.keychain-db "$S/keychain/"
for sc in in-sync all-old filevault-off multi-volume unknown-hash not-a-filevault-user; do
  "$FVSYNC" sim create "$tmp/$sc" --scenario "$sc" --iterations 1000 >/dev/null
  d="$tmp/$sc/Volumes/disk3s5"
  for f in "$d"/private/var/db/dslocal/nodes/Default/users/*.plist \
           "$d"/private/var/db/dslocal/nodes/Default/groups/*.plist; do
    cp "$f" "$S/record/$sc-$(basename "$f")"
  done
  python3 - "$d/private/var/db/dslocal/nodes/Default/users/alice.plist" "$S/shadowhash/$sc-alice.bplist" <<'PY'
import plistlib, sys
r = plistlib.load(open(sys.argv[1], "rb"))
open(sys.argv[2], "wb").write(r["ShadowHashData"][0])
PY
  for f in "$tmp/$sc"/Keybags/*.plist; do [ -e "$f" ] && cp "$f" "$S/keybag/$sc-$(basename "$f")"; done
  cp "$tmp/$sc/SimulatedMac.plist" "$S/keybag/$sc-SimulatedMac.plist"
  find "$tmp/$sc/Volumes" -name CryptoUserInfo.plist -exec cp {} "$S/keybag/$sc-CryptoUserInfo.plist" \;
done
cp "$tmp/all-old/Volumes/disk3s5/Users/alice/Library/Keychains/login.keychain-db" "$S/keychain/sim-alice.keychain-db"
if [ -x "$EMU" ]; then
  e() { "$EMU" --sim "$tmp/multi-volume" --state "$tmp/emu" "$@" || true; }
  e apfs list -plist > "$S/diskutil/emu-apfs-list.plist"
  e apfs listVolumeGroups -plist > "$S/diskutil/emu-listVolumeGroups.plist"
  e info -plist disk3s5 > "$S/diskutil/emu-info.plist"
  e apfs listCryptoUsers -plist disk3s5 > "$S/diskutil/emu-listCryptoUsers.plist"
  e info -plist disk99 > "$S/diskutil/emu-error.plist"
fi
find "$S" -type f -size 0 -delete
ls "$S"/* | wc -l

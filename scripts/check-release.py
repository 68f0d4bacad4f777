#!/usr/bin/env python3
"""Check fvsync's release binaries. Python 3 standard library only, no llvm, no Xcode.

    check-release.py --linux dist/fvsync-linux-x86_64 --macos dist/fvsync-macos-universal
    check-release.py --self-test --linux ... --macos ...

Linux binary: an x86_64 ELF with no program interpreter (PT_INTERP) and no DT_NEEDED
entry, which `file` and `ldd` also call static, and which runs (`--version` exits 0).

macOS binary: a fat Mach-O with exactly two slices, arm64 and x86_64. In each slice the
only dylib loaded (LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB, LC_REEXPORT_DYLIB,
LC_LAZY_LOAD_DYLIB, LC_LOAD_UPWARD_DYLIB) is /usr/lib/libSystem.B.dylib (Apple QA1118: no
static executables on macOS), the minimum OS (LC_BUILD_VERSION or
LC_VERSION_MIN_MACOSX) is 11.0, and the arm64 slice carries an LC_CODE_SIGNATURE whose
CodeDirectory page hashes match the bytes of the slice (Apple silicon kills unsigned
arm64 code; a post-link edit leaves a stale signature, which this catches).

Prints one line per check (ok / FAIL / skip) and exits 1 if any check failed.

--self-test corrupts copies of the two binaries in a temporary folder (flipped fat
magic, a flipped byte in signed arm64 code, a renamed dylib, a lowered minimum OS, the
binaries swapped) and checks that each copy is refused; it exits 1 if one is accepted.
"""

import argparse
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile

ALLOWED_DYLIBS = ["/usr/lib/libSystem.B.dylib"]
MIN_OS = (11, 0, 0)

# Mach-O constants (<mach-o/loader.h>, <mach-o/fat.h>, <mach/machine.h>)
FAT_MAGIC = 0xCAFEBABE
FAT_MAGIC_64 = 0xCAFEBABF
MH_MAGIC_64 = 0xFEEDFACF
MH_EXECUTE = 0x2
CPU_TYPE_X86_64 = 0x01000007
CPU_TYPE_ARM64 = 0x0100000C
ARCH_NAMES = {CPU_TYPE_X86_64: "x86_64", CPU_TYPE_ARM64: "arm64"}
LC_LOAD_DYLIB = 0xC
LC_LOAD_WEAK_DYLIB = 0x80000018
LC_REEXPORT_DYLIB = 0x8000001F
LC_LAZY_LOAD_DYLIB = 0x20
LC_LOAD_UPWARD_DYLIB = 0x80000023
DYLIB_COMMANDS = {
    LC_LOAD_DYLIB: "LC_LOAD_DYLIB",
    LC_LOAD_WEAK_DYLIB: "LC_LOAD_WEAK_DYLIB",
    LC_REEXPORT_DYLIB: "LC_REEXPORT_DYLIB",
    LC_LAZY_LOAD_DYLIB: "LC_LAZY_LOAD_DYLIB",
    LC_LOAD_UPWARD_DYLIB: "LC_LOAD_UPWARD_DYLIB",
}
LC_CODE_SIGNATURE = 0x1D
LC_VERSION_MIN_MACOSX = 0x24
LC_BUILD_VERSION = 0x32
PLATFORM_MACOS = 1

# Code signing (<Security/CSCommon.h>, xnu osfmk/kern/cs_blobs.h); big-endian blobs
CSMAGIC_EMBEDDED_SIGNATURE = 0xFADE0CC0
CSMAGIC_CODEDIRECTORY = 0xFADE0C02
CSSLOT_CODEDIRECTORY = 0
CSSLOT_ALTERNATE_CODEDIRECTORIES = 0x1000
CSSLOT_SIGNATURESLOT = 0x10000
CS_ADHOC = 0x2
CS_LINKER_SIGNED = 0x20000
CS_HASHES = {1: ("sha1", 20), 2: ("sha256", 32), 3: ("sha256", 20), 4: ("sha384", 48)}

# ELF constants
PT_DYNAMIC = 2
PT_INTERP = 3
DT_NULL = 0
DT_NEEDED = 1
EM_X86_64 = 62


class Report:
    """Collects one line per check; `failed` tells whether any check failed."""

    def __init__(self, quiet=False):
        self.failed = 0
        self.quiet = quiet

    def check(self, ok, what):
        if not ok:
            self.failed += 1
        self._say("ok  " if ok else "FAIL", what)
        return ok

    def skip(self, what):
        self._say("skip", what)

    def info(self, what):
        self._say("    ", what)

    def _say(self, tag, what):
        if not self.quiet:
            print(f"{tag}  {what}", flush=True)


class Malformed(Exception):
    pass


def unpack(fmt, data, off):
    size = struct.calcsize(fmt)
    if off < 0 or off + size > len(data):
        raise Malformed(f"truncated: need {size} bytes at offset {off}, file has {len(data)}")
    return struct.unpack_from(fmt, data, off)


def cstring(data, off, end):
    """A NUL-terminated string inside data[off:end]."""
    if off < 0 or off >= end or end > len(data):
        raise Malformed(f"string offset {off} outside its command")
    nul = data.find(b"\0", off, end)
    raw = data[off : nul if nul >= 0 else end]
    return raw.decode("utf-8", "replace")


def version_str(v):
    """Mach-O packed version xxxx.yy.zz."""
    return f"{v >> 16}.{(v >> 8) & 0xFF}.{v & 0xFF}"


def version_tuple(v):
    return (v >> 16, (v >> 8) & 0xFF, v & 0xFF)


def human_size(path):
    n = os.path.getsize(path)
    return f"{n} bytes ({n / (1024 * 1024):.2f} MiB)"


# ---------------------------------------------------------------- Linux (ELF)


def check_linux(path, rep, run=True):
    name = os.path.basename(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        rep.check(False, f"linux: cannot read {path}: {e}")
        return
    rep.info(f"linux: {name}: {human_size(path)}")
    try:
        _check_elf(data, name, rep)
    except Malformed as e:
        rep.check(False, f"linux: {name}: malformed ELF: {e}")
        return

    # The same question asked of the system's tools, as a person would.
    if shutil.which("file"):
        out = subprocess.run(["file", "-b", path], capture_output=True, text=True).stdout.strip()
        rep.check(
            "statically linked" in out or "static-pie linked" in out,
            f"linux: file says: {out[:110]}",
        )
    else:
        rep.skip("linux: `file` is not installed")
    if shutil.which("ldd"):
        p = subprocess.run(["ldd", path], capture_output=True, text=True)
        out = (p.stdout + p.stderr).strip()
        rep.check(
            "statically linked" in out or "not a dynamic executable" in out,
            f"linux: ldd says: {out.splitlines()[0] if out else '(nothing)'}",
        )
    else:
        rep.skip("linux: `ldd` is not installed")

    if run:
        try:
            p = subprocess.run([os.path.abspath(path), "--version"], capture_output=True, text=True, timeout=30)
            rep.check(p.returncode == 0, f"linux: `{name} --version` exits {p.returncode}: {p.stdout.strip()[:60]}")
        except (OSError, subprocess.TimeoutExpired) as e:
            rep.check(False, f"linux: `{name} --version` does not run: {e}")


def _check_elf(data, name, rep):
    if not rep.check(data[:4] == b"\x7fELF", f"linux: {name} is an ELF file"):
        return
    ei_class, ei_data = data[4], data[5]
    if not rep.check(ei_class == 2 and ei_data == 1, f"linux: ELF64 little-endian (class {ei_class}, data {ei_data})"):
        return
    e_type, e_machine = unpack("<HH", data, 16)
    rep.check(e_machine == EM_X86_64, f"linux: machine is x86_64 (e_machine {e_machine})")
    e_phoff, = unpack("<Q", data, 32)
    e_phentsize, e_phnum = unpack("<HH", data, 54)
    interp = None
    needed = []
    for i in range(e_phnum):
        off = e_phoff + i * e_phentsize
        p_type, _flags, p_offset, _vaddr, _paddr, p_filesz = unpack("<IIQQQQ", data, off)
        if p_type == PT_INTERP:
            interp = data[p_offset : p_offset + p_filesz].rstrip(b"\0").decode("utf-8", "replace")
        elif p_type == PT_DYNAMIC:
            for j in range(p_filesz // 16):
                d_tag, d_val = unpack("<qQ", data, p_offset + 16 * j)
                if d_tag == DT_NULL:
                    break
                if d_tag == DT_NEEDED:
                    needed.append(d_val)
    rep.check(interp is None, f"linux: no program interpreter (PT_INTERP: {interp or 'none'})")
    rep.check(not needed, f"linux: no shared library needed (DT_NEEDED entries: {len(needed)})")
    kind = {2: "ET_EXEC", 3: "ET_DYN (static-pie)"}.get(e_type, str(e_type))
    rep.info(f"linux: ELF type {kind}")


# ---------------------------------------------------------------- macOS (Mach-O)


def check_macos(path, rep):
    name = os.path.basename(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        rep.check(False, f"macos: cannot read {path}: {e}")
        return
    rep.info(f"macos: {name}: {human_size(path)}")
    try:
        slices = _fat_slices(data, name, rep)
        if slices is None:
            return
        for cputype, start, size in slices:
            _check_slice(data[start : start + size], cputype, rep)
    except Malformed as e:
        rep.check(False, f"macos: {name}: malformed Mach-O: {e}")


def _fat_slices(data, name, rep):
    magic, = unpack(">I", data, 0)
    if not rep.check(magic in (FAT_MAGIC, FAT_MAGIC_64), f"macos: {name} is a fat (universal) Mach-O (magic {magic:#010x})"):
        return None
    nfat, = unpack(">I", data, 4)
    if nfat > 16:
        raise Malformed(f"{nfat} architectures in the fat header")
    entries = []
    off = 8
    for _ in range(nfat):
        if magic == FAT_MAGIC:
            cputype, _sub, offset, size, align = unpack(">IIIII", data, off)
            off += 20
        else:
            cputype, _sub, offset, size, align, _res = unpack(">IIQQII", data, off)
            off += 32
        entries.append((cputype, offset, size, align))
    archs = sorted(ARCH_NAMES.get(c, f"cputype {c:#x}") for c, _, _, _ in entries)
    ok = rep.check(archs == ["arm64", "x86_64"], f"macos: architectures are exactly arm64 + x86_64 (found: {', '.join(archs) or 'none'})")
    # Slices inside the file, aligned, not overlapping each other or the header.
    spans = []
    for cputype, offset, size, align in entries:
        arch = ARCH_NAMES.get(cputype, hex(cputype))
        inside = off <= offset and size > 0 and offset + size <= len(data)
        aligned = align < 32 and offset % (1 << align) == 0
        rep.check(inside and aligned, f"macos: {arch} slice at {offset}, {size} bytes, align 2^{align}: inside the file and aligned")
        spans.append((offset, offset + size))
    spans.sort()
    rep.check(all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), "macos: slices do not overlap")
    if not ok:
        return None
    return [(c, o, s) for c, o, s, _ in entries if c in ARCH_NAMES]


def _check_slice(sl, fat_cputype, rep):
    arch = ARCH_NAMES[fat_cputype]
    magic, cputype, _sub, filetype, ncmds, sizeofcmds, _flags, _res = unpack("<IIIIIIII", sl, 0)
    if not rep.check(magic == MH_MAGIC_64, f"macos[{arch}]: 64-bit Mach-O header (magic {magic:#010x})"):
        return
    rep.check(cputype == fat_cputype, f"macos[{arch}]: header cputype {cputype:#x} matches the fat entry")
    rep.check(filetype == MH_EXECUTE, f"macos[{arch}]: file type is MH_EXECUTE ({filetype})")
    if 32 + sizeofcmds > len(sl):
        raise Malformed(f"{arch}: load commands ({sizeofcmds} bytes) run past the slice")

    dylibs, min_os, code_sig = [], [], None
    off = 32
    for _ in range(ncmds):
        cmd, cmdsize = unpack("<II", sl, off)
        if cmdsize < 8 or off + cmdsize > 32 + sizeofcmds:
            raise Malformed(f"{arch}: load command {cmd:#x} at {off} has size {cmdsize}")
        if cmd in DYLIB_COMMANDS:
            name_off, = unpack("<I", sl, off + 8)
            dylibs.append((DYLIB_COMMANDS[cmd], cstring(sl, off + name_off, off + cmdsize)))
        elif cmd == LC_CODE_SIGNATURE:
            code_sig = unpack("<II", sl, off + 8)
        elif cmd == LC_BUILD_VERSION:
            platform, minos, sdk = unpack("<III", sl, off + 8)
            min_os.append(("LC_BUILD_VERSION", platform, minos, sdk))
        elif cmd == LC_VERSION_MIN_MACOSX:
            version, sdk = unpack("<II", sl, off + 8)
            min_os.append(("LC_VERSION_MIN_MACOSX", PLATFORM_MACOS, version, sdk))
        off += cmdsize

    # Dylibs: libSystem and nothing else (no CoreFoundation, Security, libiconv...).
    names = [n for _, n in dylibs]
    listing = ", ".join(f"{n} ({c})" for c, n in dylibs) or "none"
    rep.check(names == ALLOWED_DYLIBS, f"macos[{arch}]: dylibs are only {ALLOWED_DYLIBS[0]} (found: {listing})")

    # Minimum OS.
    if not min_os:
        rep.check(False, f"macos[{arch}]: has LC_BUILD_VERSION or LC_VERSION_MIN_MACOSX")
    for kind, platform, minos, sdk in min_os:
        rep.check(
            platform == PLATFORM_MACOS and version_tuple(minos) == MIN_OS,
            f"macos[{arch}]: {kind} platform {platform} (1 = macOS), minos {version_str(minos)} "
            f"(want {'.'.join(map(str, MIN_OS[:2]))}), sdk {version_str(sdk)}",
        )

    # Code signature: required on arm64, verified wherever present.
    if code_sig is None:
        if arch == "arm64":
            rep.check(False, f"macos[{arch}]: has LC_CODE_SIGNATURE (Apple silicon refuses unsigned code)")
        else:
            rep.info(f"macos[{arch}]: no LC_CODE_SIGNATURE (not required on x86_64)")
        return
    rep.check(True, f"macos[{arch}]: has LC_CODE_SIGNATURE (dataoff {code_sig[0]}, {code_sig[1]} bytes)")
    _check_code_signature(sl, arch, code_sig[0], code_sig[1], rep)


def _check_code_signature(sl, arch, dataoff, datasize, rep):
    if dataoff + datasize > len(sl):
        rep.check(False, f"macos[{arch}]: signature lies inside the slice")
        return
    sig = sl[dataoff : dataoff + datasize]
    magic, length, count = unpack(">III", sig, 0)
    if not rep.check(magic == CSMAGIC_EMBEDDED_SIGNATURE and length <= datasize,
                     f"macos[{arch}]: signature is an embedded-signature SuperBlob (magic {magic:#010x})"):
        return
    blobs = {}
    for i in range(count):
        btype, boff = unpack(">II", sig, 12 + 8 * i)
        blobs[btype] = boff
    cds = [t for t in blobs if t == CSSLOT_CODEDIRECTORY or CSSLOT_ALTERNATE_CODEDIRECTORIES <= t < CSSLOT_ALTERNATE_CODEDIRECTORIES + 5]
    if not rep.check(bool(cds), f"macos[{arch}]: signature has a CodeDirectory"):
        return
    cms = CSSLOT_SIGNATURESLOT in blobs and unpack(">II", sig, blobs[CSSLOT_SIGNATURESLOT])[1] > 8
    for t in sorted(cds):
        _check_code_directory(sl, sig, blobs, blobs[t], arch, dataoff, cms, rep)


def _check_code_directory(sl, sig, blobs, cd, arch, dataoff, has_cms, rep):
    (magic, length, version, flags, hash_off, ident_off, n_special, n_code,
     code_limit, hash_size, hash_type, _platform, page_shift, _spare2) = unpack(">IIIIIIIIIBBBBI", sig, cd)
    if not rep.check(magic == CSMAGIC_CODEDIRECTORY, f"macos[{arch}]: CodeDirectory magic {magic:#010x}"):
        return
    if version >= 0x20300:
        code_limit64, = unpack(">Q", sig, cd + 56)
        if code_limit64:
            code_limit = code_limit64
    ident = cstring(sig, cd + ident_off, cd + length)
    algo = CS_HASHES.get(hash_type)
    if not rep.check(algo is not None and algo[1] == hash_size, f"macos[{arch}]: hash type {hash_type} size {hash_size} known"):
        return
    kinds = []
    if flags & CS_ADHOC:
        kinds.append("ad-hoc")
    if flags & CS_LINKER_SIGNED:
        kinds.append("linker-signed")
    if has_cms:
        kinds.append("CMS signature")
    rep.info(f"macos[{arch}]: signature: {' + '.join(kinds) or f'flags {flags:#x}'}, identifier {ident!r}, "
             f"{algo[0]}, {n_code} pages of {1 << page_shift if page_shift else 'whole file'}")
    rep.check(code_limit == dataoff, f"macos[{arch}]: signature covers the slice up to the signature (codeLimit {code_limit} = dataoff {dataoff})")

    # Every page of code hashes to the value in the CodeDirectory.
    page = (1 << page_shift) if page_shift else code_limit
    expected_pages = (code_limit + page - 1) // page if page else 0
    bad = []
    if n_code != expected_pages:
        bad.append(f"{n_code} slots for {expected_pages} pages")
    for i in range(min(n_code, expected_pages)):
        chunk = sl[i * page : min((i + 1) * page, code_limit)]
        want = sig[cd + hash_off + i * hash_size : cd + hash_off + (i + 1) * hash_size]
        got = hashlib.new(algo[0], chunk).digest()[:hash_size]
        if got != want:
            bad.append(f"page {i} (bytes {i * page}..)")
            if len(bad) > 3:
                break
    rep.check(not bad, f"macos[{arch}]: {n_code} code page hashes match the file" + (f" (mismatch: {'; '.join(bad)})" if bad else ""))

    # Special slots (requirements, entitlements...) hash the other blobs of the signature.
    bad_special = []
    for slot in range(1, n_special + 1):
        want = sig[cd + hash_off - slot * hash_size : cd + hash_off - (slot - 1) * hash_size]
        if slot in blobs:
            boff = blobs[slot]
            _m, blen = unpack(">II", sig, boff)
            got = hashlib.new(algo[0], sig[boff : boff + blen]).digest()[:hash_size]
            if got != want:
                bad_special.append(str(slot))
    if n_special:
        rep.check(not bad_special, f"macos[{arch}]: {n_special} special slot hashes match their blobs"
                  + (f" (mismatch in slots {', '.join(bad_special)})" if bad_special else ""))


# ---------------------------------------------------------------- self-test


def self_test(linux, macos):
    """Corrupt copies and make sure each one is refused."""
    with open(macos, "rb") as f:
        mac = bytearray(f.read())
    nfat, = unpack(">I", mac, 4)
    arm = next(
        (o, s) for c, _sub, o, s, _a in (unpack(">IIIII", mac, 8 + 20 * i) for i in range(nfat)) if c == CPU_TYPE_ARM64
    )

    def patched(fn):
        b = bytearray(mac)
        fn(b)
        return bytes(b)

    def flip_fat_magic(b):
        b[0] ^= 0x01

    def flip_arm64_code(b):
        b[arm[0] + arm[1] // 3] ^= 0xFF  # in __TEXT, well before the signature

    def rename_dylib(b):
        i = b.find(b"/usr/lib/libSystem.B.dylib", arm[0])
        b[i : i + 26] = b"/usr/lib/libSystem.C.dylib"

    def lower_minos(b):
        sl = bytes(b[arm[0] : arm[0] + arm[1]])
        _m, _c, _s, _ft, ncmds, _sz, _fl, _r = struct.unpack_from("<IIIIIIII", sl, 0)
        off = 32
        for _ in range(ncmds):
            cmd, cmdsize = struct.unpack_from("<II", sl, off)
            if cmd == LC_BUILD_VERSION:
                struct.pack_into("<I", b, arm[0] + off + 12, (10 << 16) | (15 << 8))
                return
            if cmd == LC_VERSION_MIN_MACOSX:
                struct.pack_into("<I", b, arm[0] + off + 8, (10 << 16) | (15 << 8))
                return
            off += cmdsize
        raise RuntimeError("no minimum-OS command to patch")

    def drop_x86_64(b):
        b[7] = 1  # nfat_arch = 1: only the first slice remains

    cases = [
        ("fat magic flipped", "macos", patched(flip_fat_magic)),
        ("one byte of arm64 code flipped", "macos", patched(flip_arm64_code)),
        ("libSystem renamed in arm64", "macos", patched(rename_dylib)),
        ("arm64 minos lowered to 10.15", "macos", patched(lower_minos)),
        ("only one architecture", "macos", patched(drop_x86_64)),
        ("the Linux binary given as macOS", "macos", open(linux, "rb").read()),
        ("the macOS binary given as Linux", "linux", bytes(mac)),
    ]
    failures = 0
    with tempfile.TemporaryDirectory(prefix="check-release-") as tmp:
        for label, kind, content in cases:
            path = os.path.join(tmp, "fvsync-bad")
            with open(path, "wb") as f:
                f.write(content)
            os.chmod(path, 0o755)
            rep = Report(quiet=True)
            if kind == "macos":
                check_macos(path, rep)
            else:
                check_linux(path, rep, run=False)
            refused = rep.failed > 0
            failures += not refused
            print(f"{'ok  ' if refused else 'FAIL'}  self-test: {label}: "
                  f"{'refused (' + str(rep.failed) + ' failed checks)' if refused else 'ACCEPTED'}", flush=True)
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--linux", help="static Linux x86_64 binary")
    ap.add_argument("--macos", help="universal macOS binary")
    ap.add_argument("--self-test", action="store_true", help="check that corrupted copies are refused")
    ap.add_argument("--no-run", action="store_true", help="do not run the Linux binary")
    args = ap.parse_args()
    if not args.linux and not args.macos:
        ap.error("give --linux and/or --macos")

    if args.self_test:
        if not (args.linux and args.macos):
            ap.error("--self-test needs both --linux and --macos")
        n = self_test(args.linux, args.macos)
        print("self-test: every corrupted copy was refused" if n == 0 else f"self-test: FAILED, {n} corrupted copies accepted")
        return 1 if n else 0

    rep = Report()
    if args.linux:
        check_linux(args.linux, rep, run=not args.no_run)
    if args.macos:
        check_macos(args.macos, rep)
    print(f"check-release: {'FAILED, ' + str(rep.failed) + ' failed checks' if rep.failed else 'all checks passed'}")
    return 1 if rep.failed else 0


if __name__ == "__main__":
    sys.exit(main())

//! `make bench`: the benchmark harness (not a test). Prints a table and writes
//! `bench/results.json`. Measures, on the same inputs:
//! 1. PBKDF2-HMAC-SHA512, 128-byte output, 121,951 iterations: fvsync vs
//!    OpenSSL (python3 hashlib) vs the single-core limit (measured SHA-512
//!    compressions per second; each iteration of each 64-byte block costs two);
//!    and vs the hand-written compression loop fvsync had before and the
//!    `pbkdf2` crate's `pbkdf2_hmac`: same inputs, interleaved runs, best of
//!    15 each;
//! 2. PBKDF2-HMAC-SHA256, 32-byte output (APFS KEK), the same way;
//! 3. the SRP verifier (PBKDF2 + 4096-bit modular exponentiation);
//! 4. `diagnose` and `reconcile` end to end on simulated Macs with realistic
//!    iteration counts, vs the derivation work they cannot avoid ÷ cores;
//! 5. `users` over 10, 1,000 and 10,000 users;
//! 6. `fvsync --version` start-up, and the release binaries' sizes.
//!
//! Usage: `cargo run --release --example bench -- [path/to/fvsync] [--kdf-only]`
//! (`--kdf-only`: sections 1 and 2 only, printed and written to
//! `bench/kdf.json`; `make bench-kdf`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fvsync::crypto;
use serde_json::json;

const PW: &[u8] = b"New-Passw0rd!";

fn best_of<F: FnMut()>(n: usize, mut f: F) -> Duration {
    (0..n)
        .map(|_| {
            crypto::clear_memo();
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// fvsync's PBKDF2-HMAC-SHA512 before it moved to the generic `Hmac` API
/// (src/crypto.rs until the dependency review): HMAC's keyed states computed
/// once, then each iteration two `sha2::compress512` calls on a pre-padded
/// block. Kept here only as the reference `make bench` compares fvsync with
/// (docs/performance.md, "PBKDF2: the crate against the hand-written loop").
mod hand {
    use hmac::{Hmac, Mac};
    use sha2::digest::{consts::U128, generic_array::GenericArray};
    use sha2::{Digest, Sha512};

    const SHA512_IV: [u64; 8] = [
        0x6a09_e667_f3bc_c908,
        0xbb67_ae85_84ca_a73b,
        0x3c6e_f372_fe94_f82b,
        0xa54f_f53a_5f1d_36f1,
        0x510e_527f_ade6_82d1,
        0x9b05_688c_2b3e_6c1f,
        0x1f83_d9ab_fb41_bd6b,
        0x5be0_cd19_137e_2179,
    ];

    /// HMAC-SHA-512's two keyed states (after `key ^ ipad`, `key ^ opad`).
    struct Pads {
        inner: [u64; 8],
        outer: [u64; 8],
    }

    impl Pads {
        fn new(key: &[u8]) -> Self {
            let mut k = [0u8; 128];
            if key.len() > 128 {
                k[..64].copy_from_slice(&Sha512::digest(key));
            } else {
                k[..key.len()].copy_from_slice(key);
            }
            let pad = |byte: u8| {
                let mut block = GenericArray::<u8, U128>::default();
                for (b, kb) in block.iter_mut().zip(k.iter()) {
                    *b = kb ^ byte;
                }
                let mut state = SHA512_IV;
                sha2::compress512(&mut state, core::slice::from_ref(&block));
                state
            };
            Pads {
                inner: pad(0x36),
                outer: pad(0x5c),
            }
        }
    }

    /// PBKDF2 block `block_no` (1-based) into `out` (at most 64 bytes).
    fn block(
        prf: &Hmac<Sha512>,
        pads: &Pads,
        salt: &[u8],
        iters: u32,
        block_no: u32,
        out: &mut [u8],
    ) {
        let mut mac = prf.clone();
        mac.update(salt);
        mac.update(&block_no.to_be_bytes());
        let mut t = [0u8; 64];
        t.copy_from_slice(&mac.finalize().into_bytes());
        let mut blk = GenericArray::<u8, U128>::default();
        blk[..64].copy_from_slice(&t);
        blk[64] = 0x80;
        blk[112..].copy_from_slice(&1536u128.to_be_bytes());
        let mut state;
        for _ in 1..iters {
            state = pads.inner;
            sha2::compress512(&mut state, core::slice::from_ref(&blk));
            for (chunk, word) in blk[..64].chunks_exact_mut(8).zip(state.iter()) {
                chunk.copy_from_slice(&word.to_be_bytes());
            }
            state = pads.outer;
            sha2::compress512(&mut state, core::slice::from_ref(&blk));
            for ((chunk, word), acc) in blk[..64]
                .chunks_exact_mut(8)
                .zip(state.iter())
                .zip(t.chunks_exact_mut(8))
            {
                let bytes = word.to_be_bytes();
                chunk.copy_from_slice(&bytes);
                for (a, b) in acc.iter_mut().zip(bytes) {
                    *a ^= b;
                }
            }
        }
        let n = out.len().min(64);
        out[..n].copy_from_slice(&t[..n]);
    }

    /// The whole derivation, one 64-byte block per thread (as fvsync splits).
    pub fn pbkdf2_sha512(pw: &[u8], salt: &[u8], iters: u32, out: &mut [u8]) {
        let prf = Hmac::<Sha512>::new_from_slice(pw).expect("any key length");
        let pads = Pads::new(pw);
        let (prf, pads) = (&prf, &pads);
        std::thread::scope(|s| {
            let mut chunks = out.chunks_mut(64).enumerate();
            let first = chunks.next();
            let rest: Vec<_> = chunks
                .map(|(i, c)| s.spawn(move || block(prf, pads, salt, iters, i as u32 + 1, c)))
                .collect();
            if let Some((_, c)) = first {
                block(prf, pads, salt, iters, 1, c);
            }
            for h in rest {
                let _ = h.join();
            }
        });
    }
}

/// `(a / b - 1)` as a signed percentage.
fn pct(a: Duration, b: Duration) -> f64 {
    (a.as_secs_f64() / b.as_secs_f64() - 1.0) * 100.0
}

/// Best of `n` runs of each of `fs`, run in turn (a, b, c, a, b, c, ...), so
/// that a moment when the machine is busy slows all of them alike.
fn best_of_interleaved<const K: usize>(n: usize, mut fs: [&mut dyn FnMut(); K]) -> [Duration; K] {
    let mut best = [Duration::MAX; K];
    for _ in 0..n {
        for (f, b) in fs.iter_mut().zip(best.iter_mut()) {
            crypto::clear_memo();
            let t = Instant::now();
            f();
            *b = (*b).min(t.elapsed());
        }
    }
    best
}

fn openssl(kind: &str, salt_len: usize, iters: u32, dk: usize) -> Option<Duration> {
    let script = format!(
        "import hashlib,time\nb=1e9\nfor _ in range(3):\n t=time.perf_counter(); hashlib.pbkdf2_hmac('{kind}', b'New-Passw0rd!', b'x'*{salt_len}, {iters}, {dk}); b=min(b,time.perf_counter()-t)\nprint(b)"
    );
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .ok()?;
    let s: f64 = String::from_utf8_lossy(&o.stdout).trim().parse().ok()?;
    Some(Duration::from_secs_f64(s))
}

fn compress512_rate() -> f64 {
    use sha2::digest::{consts::U128, generic_array::GenericArray};
    let mut st = [0u64; 8];
    let blk = [GenericArray::<u8, U128>::default()];
    let n = 2_000_000u32;
    let d = best_of(3, || {
        for _ in 0..n {
            sha2::compress512(&mut st, &blk);
        }
    });
    f64::from(n) / d.as_secs_f64()
}

fn compress256_rate() -> f64 {
    use sha2::digest::{consts::U64, generic_array::GenericArray};
    let mut st = [0u32; 8];
    let blk = [GenericArray::<u8, U64>::default()];
    let n = 4_000_000u32;
    let d = best_of(3, || {
        for _ in 0..n {
            sha2::compress256(&mut st, &blk);
        }
    });
    f64::from(n) / d.as_secs_f64()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn run(bin: &Path, args: &[&str], stdin: &str) -> Duration {
    let t = Instant::now();
    let mut c = Command::new(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run fvsync");
    use std::io::Write;
    if let Some(mut i) = c.stdin.take() {
        let _ = i.write_all(stdin.as_bytes());
    }
    let _ = c.wait();
    t.elapsed()
}

fn sim(bin: &Path, dir: &Path, scenario: &str) {
    let _ = std::fs::remove_dir_all(dir);
    let ok = Command::new(bin)
        .args([
            "sim",
            "create",
            dir.to_str().unwrap_or(""),
            "--scenario",
            scenario,
        ])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "sim create {scenario} failed");
}

/// Adds `n` users (copies of bob's record under new names) to a simulated Mac.
fn add_users(dir: &Path, n: usize) {
    let users = dir.join("Volumes/disk3s5/private/var/db/dslocal/nodes/Default/users");
    let bob = plist::Value::from_file(users.join("bob.plist")).expect("bob");
    for i in 0..n {
        let mut d = bob.as_dictionary().cloned().unwrap_or_default();
        let name = format!("user{i:05}");
        d.insert(
            "name".into(),
            plist::Value::Array(vec![name.clone().into()]),
        );
        d.insert(
            "uid".into(),
            plist::Value::Array(vec![(1000 + i).to_string().into()]),
        );
        let _ = plist::Value::Dictionary(d).to_file_binary(users.join(format!("{name}.plist")));
    }
}

fn main() {
    let kdf_only = std::env::args().any(|a| a == "--kdf-only");
    let bin = PathBuf::from(
        std::env::args()
            .skip(1)
            .find(|a| !a.starts_with("--"))
            .unwrap_or_else(|| "target/release/fvsync".into()),
    );
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let work = std::env::temp_dir().join(format!("fvsync-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&work);
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut out = serde_json::Map::new();

    // 1. SHA-512, 128 bytes.
    let it512 = 121_951u32;
    // fvsync, the hand-written loop it had before, and the pbkdf2 crate, on
    // the same inputs, interleaved (one run of each in turn, best of 15 each),
    // every result checked against fvsync's.
    let salt32 = [b'x'; 32];
    let (mut buf, mut before, mut theirs) = ([0u8; 128], [0u8; 128], [0u8; 128]);
    let [f512, hand512, crate512] = best_of_interleaved(
        15,
        [
            &mut || crypto::pbkdf2_sha512(PW, &salt32, it512, &mut buf),
            &mut || hand::pbkdf2_sha512(PW, &salt32, it512, &mut before),
            &mut || pbkdf2::pbkdf2_hmac::<sha2::Sha512>(PW, &salt32, it512, &mut theirs),
        ],
    );
    assert_eq!(before, buf);
    assert_eq!(theirs, buf);
    let (mut buf64, mut before64, mut theirs64) = ([0u8; 64], [0u8; 64], [0u8; 64]);
    let [one512, hand_one512, crate_one512] = best_of_interleaved(
        15,
        [
            &mut || crypto::pbkdf2_sha512(PW, &salt32, it512, &mut buf64),
            &mut || hand::pbkdf2_sha512(PW, &salt32, it512, &mut before64),
            &mut || pbkdf2::pbkdf2_hmac::<sha2::Sha512>(PW, &salt32, it512, &mut theirs64),
        ],
    );
    assert_eq!(before64, buf64);
    assert_eq!(theirs64, buf64);
    let o512 = openssl("sha512", 32, it512, 128);
    let r512 = compress512_rate();
    let limit512 = Duration::from_secs_f64(f64::from(it512) * 2.0 * 2.0 / r512);
    let par512 = limit512 / 2;
    rows.push((
        "PBKDF2-SHA512 128 B x 121951: fvsync".into(),
        format!("{:.1} ms", ms(f512)),
    ));
    if let Some(o) = o512 {
        rows.push((
            "  OpenSSL (hashlib)".into(),
            format!(
                "{:.1} ms  (fvsync/OpenSSL = {:.2})",
                ms(o),
                f512.as_secs_f64() / o.as_secs_f64()
            ),
        ));
    }
    rows.push((
        "  single-core limit (2 blocks sequential)".into(),
        format!(
            "{:.1} ms ({:.2} M compressions/s)",
            ms(limit512),
            r512 / 1e6
        ),
    ));
    rows.push((
        "  2-core limit (blocks in parallel)".into(),
        format!("{:.1} ms", ms(par512)),
    ));
    rows.push((
        "  fvsync, one 64-byte block (one chain)".into(),
        format!("{:.1} ms", ms(one512)),
    ));
    rows.push((
        "  hand-written compress512 loop, same split (before)".into(),
        format!(
            "{:.1} ms (fvsync {:+.1}% vs this)",
            ms(hand512),
            pct(f512, hand512)
        ),
    ));
    rows.push((
        "  hand-written loop, one chain (before)".into(),
        format!(
            "{:.1} ms (fvsync's one chain {:+.1}% vs this)",
            ms(hand_one512),
            pct(one512, hand_one512)
        ),
    ));
    rows.push((
        "  pbkdf2 crate, pbkdf2_hmac (one thread)".into(),
        format!(
            "{:.1} ms ({:+.1}% vs fvsync)",
            ms(crate512),
            pct(crate512, f512)
        ),
    ));
    rows.push((
        "  pbkdf2 crate, one 64-byte block".into(),
        format!(
            "{:.1} ms ({:+.1}% vs fvsync's one chain)",
            ms(crate_one512),
            pct(crate_one512, one512)
        ),
    ));
    out.insert(
        "pbkdf2_sha512_128".into(),
        json!({
            "iterations": it512, "fvsync_ms": ms(f512), "openssl_ms": o512.map(ms),
            "ratio_vs_openssl": o512.map(|o| f512.as_secs_f64() / o.as_secs_f64()),
            "single_core_limit_ms": ms(limit512), "parallel_limit_ms": ms(par512),
            "compress512_per_s": r512, "one_block_ms": ms(one512),
            "hand_written_ms": ms(hand512), "hand_written_one_block_ms": ms(hand_one512),
            "crate_ms": ms(crate512), "crate_one_block_ms": ms(crate_one512),
        }),
    );

    // 2. SHA-256, 32 bytes.
    let it256 = 100_000u32;
    // fvsync's SHA-256 keeps its compression-level loop (src/crypto.rs): the
    // crate is measured beside it.
    let (mut b32, mut theirs32) = ([0u8; 32], [0u8; 32]);
    let [f256, crate256] = best_of_interleaved(
        15,
        [
            &mut || crypto::pbkdf2_sha256(PW, &[b'x'; 16], it256, &mut b32),
            &mut || pbkdf2::pbkdf2_hmac::<sha2::Sha256>(PW, &[b'x'; 16], it256, &mut theirs32),
        ],
    );
    assert_eq!(theirs32, b32);
    let o256 = openssl("sha256", 16, it256, 32);
    let r256 = compress256_rate();
    let limit256 = Duration::from_secs_f64(f64::from(it256) * 2.0 / r256);
    rows.push((
        "PBKDF2-SHA256 32 B x 100000: fvsync".into(),
        format!("{:.1} ms", ms(f256)),
    ));
    if let Some(o) = o256 {
        rows.push((
            "  OpenSSL (hashlib)".into(),
            format!(
                "{:.1} ms  (fvsync/OpenSSL = {:.2})",
                ms(o),
                f256.as_secs_f64() / o.as_secs_f64()
            ),
        ));
    }
    rows.push((
        "  pbkdf2 crate, pbkdf2_hmac".into(),
        format!(
            "{:.1} ms ({:+.1}% vs fvsync)",
            ms(crate256),
            pct(crate256, f256)
        ),
    ));
    rows.push((
        "  single-core limit".into(),
        format!(
            "{:.1} ms ({:.2} M compressions/s)",
            ms(limit256),
            r256 / 1e6
        ),
    ));
    out.insert(
        "pbkdf2_sha256_32".into(),
        json!({
            "iterations": it256, "fvsync_ms": ms(f256), "openssl_ms": o256.map(ms),
            "ratio_vs_openssl": o256.map(|o| f256.as_secs_f64() / o.as_secs_f64()),
            "single_core_limit_ms": ms(limit256), "crate_ms": ms(crate256),
        }),
    );

    if kdf_only {
        let _ = std::fs::remove_dir_all(&work);
        finish(&rows, &bin, out, "bench/kdf.json");
        return;
    }

    // 3. SRP verifier.
    let srp = best_of(3, || {
        let _ = fvsync::formats::shadowhash::SrpEntry::derive(PW, [7u8; 32], 136_986);
    });
    let modexp = best_of(5, || {
        let _ = crypto::srp_verifier_4096(&[0xa5; 64]);
    });
    rows.push((
        "SRP verifier (136986 iterations + 4096-bit modexp)".into(),
        format!("{:.1} ms (modexp {:.2} ms)", ms(srp), ms(modexp)),
    ));
    out.insert(
        "srp_verifier".into(),
        json!({"ms": ms(srp), "modexp_ms": ms(modexp)}),
    );

    // 4. End to end, realistic counts.
    let unavoidable_diag = {
        // FileVault OLD (SHA-256 x 100000); login hash and SRP verifier for OLD
        // and NEW (4 x SHA-512 128 B, plus the SRP verifier's 4096-bit modexp
        // for each of OLD and NEW); keychain master key for OLD and NEW (2 x
        // SHA-1, 1,000 iterations): total work on one core, then ÷ cores.
        let one512_single = f512 * 2; // f512 uses two cores for its two blocks
        let mut mk = [0u8; 24];
        let kc = best_of(5, || crypto::pbkdf2_sha1(PW, &[b'k'; 20], 1000, &mut mk));
        let total = f256 + one512_single * 4 + modexp * 2 + kc * 2;
        total / cores as u32
    };
    let mac = work.join("mac");
    sim(&bin, &mac, "all-old");
    let m = mac.to_str().unwrap_or("");
    let diag = (0..3)
        .map(|_| {
            run(
                &bin,
                &[
                    "--simulate",
                    m,
                    "diagnose",
                    "--user",
                    "alice",
                    "--password-stdin",
                ],
                "Old-Passw0rd!\nNew-Passw0rd!\n",
            )
        })
        .min()
        .unwrap_or_default();
    let recon = run(
        &bin,
        &[
            "--simulate",
            m,
            "reconcile",
            "--user",
            "alice",
            "--password-stdin",
            "--yes",
        ],
        "Old-Passw0rd!\nNew-Passw0rd!\n",
    );
    rows.push((
        "diagnose end to end (all-old, realistic counts)".into(),
        format!(
            "{:.0} ms; unavoidable derivation work / {cores} cores = {:.0} ms (ratio {:.2})",
            ms(diag),
            ms(unavoidable_diag),
            diag.as_secs_f64() / unavoidable_diag.as_secs_f64()
        ),
    ));
    rows.push((
        "reconcile end to end (all-old, realistic counts)".into(),
        format!("{:.0} ms", ms(recon)),
    ));
    out.insert("end_to_end".into(), json!({
        "cores": cores, "diagnose_ms": ms(diag), "diagnose_unavoidable_ms": ms(unavoidable_diag),
        "diagnose_ratio": diag.as_secs_f64() / unavoidable_diag.as_secs_f64(), "reconcile_ms": ms(recon),
    }));

    // 5. users over many users.
    let mut users_js = serde_json::Map::new();
    for n in [10usize, 1000, 10_000] {
        let d = work.join(format!("users{n}"));
        sim(&bin, &d, "filevault-off");
        add_users(&d, n.saturating_sub(3));
        let s = d.to_str().unwrap_or("");
        let t = (0..3)
            .map(|_| run(&bin, &["--simulate", s, "users"], ""))
            .min()
            .unwrap_or_default();
        rows.push((format!("users over {n} users"), format!("{:.0} ms", ms(t))));
        users_js.insert(n.to_string(), json!(ms(t)));
        let _ = std::fs::remove_dir_all(&d);
    }
    out.insert("users_ms".into(), serde_json::Value::Object(users_js));

    // 6. Start-up and sizes.
    let mut starts: Vec<Duration> = (0..30).map(|_| run(&bin, &["--version"], "")).collect();
    starts.sort();
    let median = starts[starts.len() / 2];
    rows.push((
        "fvsync --version (median of 30)".into(),
        format!("{:.2} ms", ms(median)),
    ));
    out.insert("version_startup_ms".into(), json!(ms(median)));
    let mut sizes = serde_json::Map::new();
    for f in ["dist/fvsync-linux-x86_64", "dist/fvsync-macos-universal"] {
        if let Ok(m) = std::fs::metadata(f) {
            rows.push((
                format!("size of {f}"),
                format!("{} bytes ({:.2} MiB)", m.len(), m.len() as f64 / 1048576.0),
            ));
            sizes.insert(f.into(), json!(m.len()));
        }
    }
    out.insert("sizes_bytes".into(), serde_json::Value::Object(sizes));

    // 7. diskutil calls of the seed case through the emulated diskutil
    // (FVSYNC_BENCH_EMULATOR, which `make bench` builds): a count, not a time.
    if let Some(emu) = std::env::var_os("FVSYNC_BENCH_EMULATOR").map(PathBuf::from) {
        match diskutil_calls(&bin, &emu, &work.join("calls")) {
            Some((mac, preboot, rehearsal)) => {
                rows.push((
                    "diskutil calls, seed reconcile (fv-old-login-new)".into(),
                    format!(
                        "{} on the Mac's volumes ({preboot} of them reading Preboot), {rehearsal} for the rehearsal",
                        mac
                    ),
                ));
                out.insert(
                    "diskutil_calls".into(),
                    json!({"mac": mac, "preboot": preboot, "rehearsal": rehearsal}),
                );
            }
            None => rows.push((
                "diskutil calls, seed reconcile".into(),
                "not measured (the reconcile through the emulator failed)".into(),
            )),
        }
    }
    let _ = std::fs::remove_dir_all(&work);

    finish(&rows, &bin, out, "bench/results.json");
}

/// Runs the seed case's reconcile through the emulated diskutil in `dir`
/// and counts its calls from the emulator's log: on the Mac's own volumes,
/// of those the Preboot reads (mount, info and unmount of the Preboot
/// volume), and the rehearsal's (hdiutil and the throwaway disks).
fn diskutil_calls(bin: &Path, emu: &Path, dir: &Path) -> Option<(usize, usize, usize)> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("session")).ok()?;
    let mac = dir.join("mac");
    let ok = Command::new(bin)
        .args([
            "sim",
            "create",
            mac.to_str()?,
            "--scenario",
            "fv-old-login-new",
        ])
        .args(["--iterations", "1000"])
        .stdout(Stdio::null())
        .status()
        .ok()?
        .success();
    if !ok {
        return None;
    }
    std::os::unix::fs::symlink(emu, dir.join("diskutil")).ok()?;
    std::os::unix::fs::symlink(emu, dir.join("hdiutil")).ok()?;
    let mut c = Command::new(bin)
        .args(["--diskutil", dir.join("diskutil").to_str()?])
        .args(["--hdiutil", dir.join("hdiutil").to_str()?])
        .args(["reconcile", "--user", "alice", "--password-stdin", "--yes"])
        .env("TMPDIR", dir.join("session"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    {
        use std::io::Write;
        let mut i = c.stdin.take()?;
        i.write_all(b"Old-Passw0rd!\nNew-Passw0rd!\n").ok()?;
    }
    if !c.wait().ok()?.success() {
        return None;
    }
    let log = std::fs::read_to_string(dir.join("emu/calls.jsonl")).ok()?;
    let (mut mac_calls, mut preboot, mut rehearsal) = (0, 0, 0);
    let mut rehearsing = false;
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let argv: Vec<&str> = v["argv"]
            .as_array()?
            .iter()
            .filter_map(|a| a.as_str())
            .collect();
        if v["tool"].as_str() == Some("hdiutil") {
            match argv.first().copied() {
                Some("attach") => rehearsing = true,
                Some("detach") => rehearsing = false,
                _ => {}
            }
            rehearsal += 1;
            continue;
        }
        let throwaway = argv.iter().any(|a| {
            a.trim_start_matches("/dev/")
                .strip_prefix("disk")
                .and_then(|r| r.split('s').next())
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n >= 100)
        });
        if rehearsing || throwaway {
            rehearsal += 1;
            continue;
        }
        mac_calls += 1;
        if argv.last() == Some(&"disk3s2")
            && matches!(argv.first().copied(), Some("mount" | "unmount" | "info"))
        {
            preboot += 1;
        }
    }
    Some((mac_calls, preboot, rehearsal))
}

/// Prints the table and writes the JSON document.
fn finish(
    rows: &[(String, String)],
    bin: &Path,
    out: serde_json::Map<String, serde_json::Value>,
    path: &str,
) {
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    for (k, v) in rows {
        println!("{k:<width$}  {v}");
    }
    let _ = std::fs::create_dir_all("bench");
    let doc = json!({"version": 1, "binary": bin, "results": out});
    let _ = std::fs::write(path, serde_json::to_vec_pretty(&doc).unwrap_or_default());
    println!("\nwrote {path}");
}

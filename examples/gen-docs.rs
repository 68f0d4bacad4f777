//! `make docs`: writes the man pages (clap_mangen) and shell completions
//! (clap_complete) generated from fvsync's own command-line definition, so
//! they never drift from `--help`. Each file is named as it is written.
//!
//! The SYNOPSIS is fvsync's own: every flag with its value (`--user NAME`,
//! `[--volume DEV]`), the flags for testing and support (`--diskutil`, ...)
//! left out of it (the OPTIONS section lists them).
//!
//! Usage: `cargo run --example gen-docs -- OUT_DIR`

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};

/// The heading of the flags kept out of the synopsis (src/cli.rs).
const SUPPORT: &str = "Testing and support";

/// The synopsis line: name, flags with their values, positionals, subcommand.
pub fn synopsis(cmd: &clap::Command) -> Vec<Inline> {
    let name = cmd.get_bin_name().unwrap_or_else(|| cmd.get_name());
    let mut line = vec![bold(name)];
    for a in cmd.get_arguments() {
        if a.is_hide_set() || a.get_help_heading() == Some(SUPPORT) || a.is_positional() {
            continue;
        }
        if a.get_id() == "help" || a.get_id() == "version" {
            continue;
        }
        let required = a.is_required_set();
        line.push(roman(if required { " " } else { " [" }));
        match (a.get_short(), a.get_long()) {
            (Some(s), Some(l)) => {
                line.push(bold(format!("-{s}")));
                line.push(roman("|"));
                line.push(bold(format!("--{l}")));
            }
            (Some(s), None) => line.push(bold(format!("-{s}"))),
            (None, Some(l)) => line.push(bold(format!("--{l}"))),
            (None, None) => continue,
        }
        if a.get_num_args().is_some_and(|n| n.takes_values()) {
            let v = a
                .get_value_names()
                .map(|v| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|| a.get_id().as_str().to_uppercase());
            line.push(roman(" "));
            line.push(italic(v));
        }
        if !required {
            line.push(roman("]"));
        }
    }
    for p in cmd.get_positionals() {
        let v = p
            .get_value_names()
            .map(|v| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| p.get_id().as_str().to_uppercase());
        line.push(roman(" "));
        line.push(italic(v));
    }
    if cmd.has_subcommands() {
        line.push(roman(" "));
        line.push(italic("command"));
        line.push(roman(" ..."));
    }
    line
}

fn page(cmd: &clap::Command, dir: &Path) -> std::io::Result<PathBuf> {
    let man = clap_mangen::Man::new(cmd.clone());
    let path = dir.join(man.get_filename());
    let mut w = Vec::new();
    man.render_title(&mut w)?;
    man.render_name_section(&mut w)?;
    let mut roff = Roff::default();
    roff.control("SH", ["SYNOPSIS"]);
    roff.text(synopsis(cmd));
    roff.to_writer(&mut w)?;
    man.render_description_section(&mut w)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut w)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut w)?;
    }
    if cmd.get_after_long_help().is_some() || cmd.get_after_help().is_some() {
        man.render_extra_section(&mut w)?;
    }
    if cmd.get_version().is_some() {
        man.render_version_section(&mut w)?;
    }
    let mut f = std::fs::File::create(&path)?;
    f.write_all(&w)?;
    Ok(path)
}

fn pages(cmd: &clap::Command, dir: &Path, n: &mut usize, total: usize) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages(sub, dir, n, total)?;
    }
    let p = page(cmd, dir)?;
    *n += 1;
    println!("[{n}/{total}] {}", p.display());
    Ok(())
}

fn count(cmd: &clap::Command) -> usize {
    1 + cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(count)
        .sum::<usize>()
}

/// Writes the man pages into `out/man` and the completions into
/// `out/completions`, printing "[n/N] path" for each file.
pub fn write(out: &Path) -> std::io::Result<()> {
    let man = out.join("man");
    let comp = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&comp)?;
    let mut cmd = fvsync::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let total = count(&cmd) + 3;
    let mut n = 0;
    pages(&cmd, &man, &mut n, total)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let p = clap_complete::generate_to(shell, &mut cmd.clone(), "fvsync", &comp)?;
        n += 1;
        println!("[{n}/{total}] {}", p.display());
    }
    Ok(())
}

#[allow(dead_code)] // tests/docs.rs includes this file for `write`.
fn main() -> std::io::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "dist/docs".into()),
    );
    write(&out)
}

//! `make docs`: writes the man pages (clap_mangen) and shell completions
//! (clap_complete) generated from fvsync's own command-line definition, so
//! they never drift from `--help`.
//!
//! Usage: `cargo run --example gen-docs -- OUT_DIR`

use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;

fn main() -> std::io::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "dist/docs".into()),
    );
    let man = out.join("man");
    let comp = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&comp)?;
    let cmd = fvsync::cli::Cli::command();
    clap_mangen::generate_to(cmd.clone(), &man)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd.clone(), "fvsync", &comp)?;
    }
    for dir in [&man, &comp] {
        let mut names: Vec<_> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for n in names {
            println!("{}", dir.join(n).display());
        }
    }
    Ok(())
}

//! The fvsync binary: parse, run, map the result to an exit code.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // No core dump may carry a password out of this process.
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
    let cli = match fvsync::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let mut ui = fvsync::output::Ui::stdio(cli.json);
    let code = match fvsync::cli::run(cli, &mut ui) {
        Ok(code) => code,
        Err(e) => {
            ui.error(&e);
            e.kind().exit_code()
        }
    };
    ui.flush();
    ExitCode::from(code)
}

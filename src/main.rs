//! The fvsync binary: parse, run, map the result to an exit code.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // No core dump may carry a password out of this process.
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
    // Ctrl-C: a prompt may have turned the terminal's echo off; put it back,
    // then stop. Every write fvsync makes is atomic and journaled, so stopping
    // here is as safe as a power cut (the next run resumes or finds nothing done).
    let saved = fvsync::secret::terminal_state();
    let _ = ctrlc::set_handler(move || {
        fvsync::secret::restore_terminal(saved.as_ref());
        eprintln!("\nfvsync: interrupted (Ctrl-C)");
        std::process::exit(130);
    });
    let cli = match fvsync::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // A password typed on the command line is never echoed back.
            if let Some((message, hint)) = fvsync::argv::careless(&e) {
                let width = fvsync::output::terminal_width();
                for l in fvsync::output::wrap(&message, width, "fvsync: error: ", "  ")
                    .into_iter()
                    .chain(fvsync::output::wrap(&hint, width, "fvsync: hint: ", "  "))
                {
                    eprintln!("{l}");
                }
                return ExitCode::from(fvsync::error::Exit::Usage.code());
            }
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let mut ui = fvsync::output::Ui::stdio(cli.json);
    let result = fvsync::cli::run(cli, &mut ui);
    if let Some(why) = fvsync::memlock::failure() {
        ui.warn(&format!(
            "could not lock the passwords' memory against swapping ({why}); they were still wiped after use"
        ));
    }
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            ui.error(&e);
            e.kind().exit_code()
        }
    };
    ui.flush();
    fvsync::crypto::clear_memo();
    ExitCode::from(code)
}

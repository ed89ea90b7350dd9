//! Binary entry point: parse the CLI, build the runtime, bind, announce the address, serve until signalled.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::error::ErrorKind;
use clap::Parser;
use floodgate_target::{bind, serve, serve_h2c, serve_tls, shutdown_signal, Config, Target};

fn main() -> ExitCode {
    let config = match Config::try_parse() {
        Ok(config) => config,
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            error.exit()
        }
        Err(error) => {
            // Callers (scripts, the tester) want one line; clap's first line
            // names the flag and the problem, the rest is usage boilerplate.
            let rendered = error.to_string();
            eprintln!(
                "{}",
                rendered
                    .lines()
                    .next()
                    .unwrap_or("error: invalid arguments")
            );
            return ExitCode::from(2);
        }
    };
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: &Config) -> anyhow::Result<()> {
    let state = Arc::new(Target::new(config).map_err(anyhow::Error::msg)?);
    let tls = floodgate_target::tls::from_config(config).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads())
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        let listener =
            bind(config.listen).with_context(|| format!("cannot listen on {}", config.listen))?;
        let local = listener
            .local_addr()
            .context("cannot read the bound address")?;
        let shutdown = shutdown_signal().context("cannot install signal handlers")?;
        // Tests and scripts parse this line for the port; a closed stdout must
        // not stop the server, hence no println! (which panics on EPIPE).
        // The same line over TLS: scripts parse the address from it.
        let _ = writeln!(std::io::stdout(), "floodgate-target listening on {local}");
        match tls {
            Some(tls) => serve_tls(listener, state, tls, shutdown).await,
            None if config.h2c => serve_h2c(listener, state, shutdown).await,
            None => serve(listener, state, shutdown).await,
        }
        Ok(())
    })
}

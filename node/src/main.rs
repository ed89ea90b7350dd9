//! The `floodgate` binary: parse the command line, start logging, run the chosen role.

use clap::Parser;
use floodgate::cli::{Cli, Command, TestCommand};
use floodgate::{app, client};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // One line saying what to fix, not a usage screen.
            let rendered = e.to_string();
            let first: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            eprintln!("{} (see --help)", first.join(" "));
            std::process::exit(2);
        }
    };
    if let Err(e) = floodgate::telemetry::init(cli.log_format, &cli.log) {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    let code = runtime.block_on(async {
        let result = match cli.command {
            Command::Orchestrator(a) => app::orchestrator(a).await.map_err(|e| (2, e.to_string())),
            Command::Driver(a) => app::driver(a).await.map_err(|e| (2, e.to_string())),
            Command::Load(a) => app::load(a).await.map_err(|e| (2, e.to_string())),
            Command::Nodes(a) => client::nodes(a).await.map_err(|e| (e.code, e.message)),
            Command::Test(TestCommand::Run(a)) => {
                client::run(a).await.map_err(|e| (e.code, e.message))
            }
            Command::Test(TestCommand::List(a)) => {
                client::list(a).await.map_err(|e| (e.code, e.message))
            }
            Command::Test(TestCommand::Show { id, client: c }) => {
                client::show(&id, c).await.map_err(|e| (e.code, e.message))
            }
            Command::Test(TestCommand::Stop { id, client: c }) => {
                client::stop(&id, c).await.map_err(|e| (e.code, e.message))
            }
            Command::Test(TestCommand::Report(a)) => {
                client::report(a).await.map_err(|e| (e.code, e.message))
            }
        };
        match result {
            Ok(()) => 0,
            Err((code, message)) => {
                eprintln!("error: {message}");
                code
            }
        }
    });
    std::process::exit(code);
}

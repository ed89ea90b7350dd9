//! The `floodgate` binary: parse the command line, start logging, run the chosen role.

use floodgate::cli::{Cli, Command, TestCommand};
use floodgate::{app, client};

fn main() {
    let cli: Cli = app::parse_args_or_exit();
    let runtime = app::runtime_or_exit(cli.log_format, &cli.log);
    let code = runtime.block_on(async {
        let result = match cli.command {
            Command::Orchestrator(a) => app::orchestrator(a).await.map_err(|e| (2, e.to_string())),
            Command::Driver(a) => app::driver(a).await.map_err(|e| (2, e.to_string())),
            Command::Load(a) => app::load(a).await.map_err(|e| {
                let code = if e.is::<app::ThresholdsNotPassed>() {
                    client::EXIT_THRESHOLDS
                } else {
                    2
                };
                (code, e.to_string())
            }),
            Command::Nodes(a) => client::nodes(a).await.map_err(|e| (e.code, e.message)),
            Command::Test(TestCommand::Run(a)) => {
                client::run(*a).await.map_err(|e| (e.code, e.message))
            }
            Command::Test(TestCommand::List(a)) => {
                client::list(a).await.map_err(|e| (e.code, e.message))
            }
            Command::Test(TestCommand::Show { id, client: c }) => {
                client::show(&id, c).await.map_err(|e| (e.code, e.message))
            }
            Command::Test(TestCommand::SetRate(a)) => {
                client::set_rate(a).await.map_err(|e| (e.code, e.message))
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

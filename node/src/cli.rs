//! Command-line definitions. Every flag of a node can also come from a `FLOODGATE_*`
//! environment variable, for containers.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "floodgate",
    version,
    about = "Distributed HTTP load testing over Kafka"
)]
pub struct Cli {
    /// Log format on stdout.
    #[arg(
        long,
        global = true,
        env = "FLOODGATE_LOG_FORMAT",
        default_value = "human"
    )]
    pub log_format: LogFormat,
    /// Log filter (e.g. info, debug, floodgate=debug).
    #[arg(long, global = true, env = "FLOODGATE_LOG", default_value = "info")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the orchestrator node (REST API + runtime controller).
    Orchestrator(OrchestratorArgs),
    /// Run a driver node.
    Driver(DriverArgs),
    /// Create, run and inspect tests through an orchestrator's REST API.
    #[command(subcommand)]
    Test(TestCommand),
    /// List the drivers an orchestrator knows, with liveness.
    Nodes(ClientArgs),
    /// Run the load engine locally against a URL, without Kafka (single-node use and benchmarks).
    Load(LoadArgs),
}

#[derive(Args, Debug, Clone)]
pub struct KafkaArgs {
    /// Kafka bootstrap address (HOST:PORT[,HOST:PORT…]).
    #[arg(long, env = "FLOODGATE_KAFKA")]
    pub kafka: String,
    /// Prefix for all five topic names (lets several clusters share a broker).
    #[arg(long, env = "FLOODGATE_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,
    #[arg(long, env = "FLOODGATE_TOPIC_REGISTER")]
    pub topic_register: Option<String>,
    #[arg(long, env = "FLOODGATE_TOPIC_TEST_CONFIG")]
    pub topic_test_config: Option<String>,
    #[arg(long, env = "FLOODGATE_TOPIC_TRIGGER")]
    pub topic_trigger: Option<String>,
    #[arg(long, env = "FLOODGATE_TOPIC_METRICS")]
    pub topic_metrics: Option<String>,
    #[arg(long, env = "FLOODGATE_TOPIC_HEARTBEAT")]
    pub topic_heartbeat: Option<String>,
    /// Floodgate's own control topic (stop), which nodes of other implementations never read.
    #[arg(long, env = "FLOODGATE_TOPIC_CONTROL")]
    pub topic_control: Option<String>,
    /// How long start-up waits for a broker that is not ready yet (just started, electing
    /// leaders) before giving up, in seconds.
    #[arg(long, env = "FLOODGATE_KAFKA_WAIT_S", default_value_t = 120)]
    pub kafka_wait_s: u64,
    #[command(flatten)]
    pub security: KafkaSecurityArgs,
}

/// How the node's Kafka clients authenticate and encrypt (docs/security.md). Shared by every
/// node and the operator, which passes the same settings on to its drivers.
#[derive(Args, Debug, Clone, Default)]
pub struct KafkaSecurityArgs {
    /// Kafka's security.protocol.
    #[arg(
        long,
        env = "FLOODGATE_KAFKA_SECURITY_PROTOCOL",
        default_value = "plaintext"
    )]
    pub kafka_security_protocol: crate::bus::security::SecurityProtocol,
    /// SASL mechanism (with sasl_plaintext or sasl_ssl).
    #[arg(long, env = "FLOODGATE_KAFKA_SASL_MECHANISM")]
    pub kafka_sasl_mechanism: Option<crate::bus::security::SaslMechanism>,
    #[arg(long, env = "FLOODGATE_KAFKA_SASL_USERNAME")]
    pub kafka_sasl_username: Option<String>,
    /// Prefer the environment variable (or a Kubernetes Secret behind it) to the flag, which
    /// other users of the machine can read in the process list.
    #[arg(long, env = "FLOODGATE_KAFKA_SASL_PASSWORD", hide_env_values = true)]
    pub kafka_sasl_password: Option<crate::bus::security::Secret>,
    /// CA certificate(s), PEM, that sign the brokers' certificates (default: the system's).
    #[arg(long, env = "FLOODGATE_KAFKA_SSL_CA")]
    pub kafka_ssl_ca: Option<PathBuf>,
    /// Client certificate, PEM, for brokers that require mutual TLS (with --kafka-ssl-key).
    #[arg(long, env = "FLOODGATE_KAFKA_SSL_CERT")]
    pub kafka_ssl_cert: Option<PathBuf>,
    /// Client private key, PEM.
    #[arg(long, env = "FLOODGATE_KAFKA_SSL_KEY")]
    pub kafka_ssl_key: Option<PathBuf>,
    #[arg(long, env = "FLOODGATE_KAFKA_SSL_KEY_PASSWORD", hide_env_values = true)]
    pub kafka_ssl_key_password: Option<crate::bus::security::Secret>,
    /// Any other librdkafka property, KEY=VALUE; repeatable (comma-separated in the variable).
    #[arg(
        long = "kafka-option",
        env = "FLOODGATE_KAFKA_OPTIONS",
        value_delimiter = ','
    )]
    pub kafka_options: Vec<String>,
}

impl KafkaSecurityArgs {
    /// The settings that are not credentials, as the `FLOODGATE_KAFKA_*` variables that give
    /// them to another node (the operator's drivers). Passwords are never among them: they
    /// travel only by reference to a Secret.
    pub fn plain_env(&self) -> Vec<(String, String)> {
        let s = self.security();
        let mut env = vec![(
            "FLOODGATE_KAFKA_SECURITY_PROTOCOL".to_string(),
            self.kafka_security_protocol
                .to_possible_value()
                .map(|v| v.get_name().to_string())
                .unwrap_or_default(),
        )];
        let mut add = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                env.push((name.to_string(), v));
            }
        };
        add(
            "FLOODGATE_KAFKA_SASL_MECHANISM",
            self.kafka_sasl_mechanism
                .and_then(|m| m.to_possible_value())
                .map(|v| v.get_name().to_string()),
        );
        add("FLOODGATE_KAFKA_SASL_USERNAME", s.sasl_username);
        let path = |p: Option<PathBuf>| p.map(|p| p.display().to_string());
        add("FLOODGATE_KAFKA_SSL_CA", path(s.ssl_ca));
        add("FLOODGATE_KAFKA_SSL_CERT", path(s.ssl_certificate));
        add("FLOODGATE_KAFKA_SSL_KEY", path(s.ssl_key));
        if !s.options.is_empty() {
            add("FLOODGATE_KAFKA_OPTIONS", Some(s.options.join(",")));
        }
        env
    }

    /// Whether a credential is set (which another node can only get from a Secret).
    pub fn has_credentials(&self) -> bool {
        self.kafka_sasl_password.is_some() || self.kafka_ssl_key_password.is_some()
    }

    pub fn security(&self) -> crate::bus::security::KafkaSecurity {
        crate::bus::security::KafkaSecurity {
            protocol: self.kafka_security_protocol,
            sasl_mechanism: self.kafka_sasl_mechanism,
            sasl_username: self.kafka_sasl_username.clone(),
            sasl_password: self.kafka_sasl_password.clone(),
            ssl_ca: self.kafka_ssl_ca.clone(),
            ssl_certificate: self.kafka_ssl_cert.clone(),
            ssl_key: self.kafka_ssl_key.clone(),
            ssl_key_password: self.kafka_ssl_key_password.clone(),
            options: self.kafka_options.clone(),
        }
    }
}

/// How the seed's fields are written for nodes of other implementations (docs/protocol.md has
/// the table of which peer needs what). Floodgate's own nodes read exact extension fields and
/// do not depend on these.
#[derive(Args, Debug, Clone)]
pub struct SeedArgs {
    /// Seed numbers as JSON numbers or as the seed's quoted strings.
    #[arg(long, env = "FLOODGATE_SEED_NUMBERS", default_value = "number")]
    pub seed_numbers: crate::protocol::NumberStyle,
    /// Unit of `test_message_delay`: written in it (orchestrator), and assumed for a config
    /// that comes without Floodgate's exact `delay_us` (driver).
    #[arg(long, env = "FLOODGATE_SEED_DELAY_UNIT", default_value = "s")]
    pub seed_delay_unit: crate::protocol::DelayUnit,
    /// Spelling of `test_type` in configs: upper (TSUNAMI) or title (Tsunami).
    #[arg(long, env = "FLOODGATE_SEED_TEST_TYPE", default_value = "upper")]
    pub seed_test_type: crate::protocol::TypeCase,
}

impl SeedArgs {
    pub fn style(&self) -> crate::protocol::SeedStyle {
        crate::protocol::SeedStyle {
            numbers: self.seed_numbers,
            delay_unit: self.seed_delay_unit,
            type_case: self.seed_test_type,
        }
    }
}

impl KafkaArgs {
    pub fn topics(&self) -> crate::protocol::Topics {
        let mut t = crate::protocol::Topics::with_prefix(&self.topic_prefix);
        let set = |slot: &mut String, v: &Option<String>| {
            if let Some(v) = v {
                slot.clone_from(v);
            }
        };
        set(&mut t.register, &self.topic_register);
        set(&mut t.test_config, &self.topic_test_config);
        set(&mut t.trigger, &self.topic_trigger);
        set(&mut t.metrics, &self.topic_metrics);
        set(&mut t.heartbeat, &self.topic_heartbeat);
        set(&mut t.control, &self.topic_control);
        t
    }

    pub fn wait(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.kafka_wait_s)
    }
}

/// What a deployment lets its tests aim at and ask for (the orchestrator's and the operator's).
#[derive(Args, Debug, Clone, Default)]
pub struct DeploymentArgs {
    /// Hosts (`name`, `*.domain`) or CIDRs tests may aim at, comma-separated. Empty: any host,
    /// except link-local and cloud metadata addresses, which only a CIDR listed here opens.
    #[arg(
        long = "allow-target",
        env = "FLOODGATE_ALLOW_TARGETS",
        value_delimiter = ','
    )]
    pub allow_targets: Vec<String>,
    /// Most requests per driver a test may ask for (at most the hard limit, 10⁹).
    #[arg(long, env = "FLOODGATE_MAX_REQUESTS_PER_DRIVER")]
    pub max_requests_per_driver: Option<u64>,
    /// Most connections per driver a test may ask for (at most 10000).
    #[arg(long, env = "FLOODGATE_MAX_CONCURRENCY")]
    pub max_concurrency: Option<u64>,
    /// Most requests/s per driver; a test that names no rate is paced at it.
    #[arg(long, env = "FLOODGATE_MAX_RATE")]
    pub max_rate: Option<f64>,
}

impl DeploymentArgs {
    /// The target policy and caps, or what is wrong with the flags.
    pub fn policy(
        &self,
    ) -> anyhow::Result<(
        crate::orchestrator::targets::TargetPolicy,
        crate::protocol::limits::Caps,
    )> {
        let targets = crate::orchestrator::targets::TargetPolicy::new(&self.allow_targets)
            .map_err(|e| anyhow::anyhow!("--allow-target: {e}"))?;
        let caps = crate::protocol::limits::Caps::new(
            self.max_requests_per_driver,
            self.max_concurrency,
            self.max_rate,
        )
        .map_err(|e| {
            anyhow::anyhow!("--max-requests-per-driver/--max-concurrency/--max-rate: {e}")
        })?;
        Ok((targets, caps))
    }
}

/// Who may call the API (docs/decisions.md, "Who may aim the fleet"). Tokens also come from
/// the environment variable FLOODGATE_TOKEN (one token; never a flag, so never in `ps`).
#[derive(Args, Debug, Clone, Default)]
pub struct AccessArgs {
    /// File of API tokens, one a line (blank lines and # comments skipped), e.g. a mounted
    /// Kubernetes Secret. Every state-changing call, and every read unless --reads-open, must
    /// send one as `Authorization: Bearer <token>`.
    #[arg(long, env = "FLOODGATE_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Reads (GET) need no token; changes still do.
    #[arg(long, env = "FLOODGATE_READS_OPEN")]
    pub reads_open: bool,
    /// `GET /metrics` needs no token (for Prometheus scrapes that cannot send one).
    #[arg(long, env = "FLOODGATE_METRICS_OPEN")]
    pub metrics_open: bool,
    /// Serve the API without tokens on an address other machines can reach (refused otherwise).
    #[arg(long, env = "FLOODGATE_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
    /// An origin (scheme://host[:port]) whose pages may make changes besides the orchestrator's
    /// own (repeatable; the variable takes a comma-separated list).
    #[arg(
        long = "allowed-origin",
        env = "FLOODGATE_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,
}

#[derive(Args, Debug)]
pub struct OrchestratorArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub access: AccessArgs,
    /// Address of the REST API (the orchestrator's own address).
    #[arg(
        long,
        env = "FLOODGATE_LISTEN",
        default_value = "127.0.0.1:8090",
        alias = "orchestrator"
    )]
    pub listen: String,
    /// Unique node ID (generated when absent).
    #[arg(long, env = "FLOODGATE_ID")]
    pub id: Option<String>,
    /// SQLite metrics store (default: .floodgate/orchestrator.sqlite).
    #[arg(long, env = "FLOODGATE_STORE")]
    pub store: Option<PathBuf>,
    /// A driver silent for this long is shown as lost (3 heartbeats by default).
    #[arg(long, env = "FLOODGATE_HEARTBEAT_TIMEOUT_MS", default_value_t = 3000)]
    pub heartbeat_timeout_ms: u64,
    /// Drivers start together this long after a trigger.
    #[arg(long, env = "FLOODGATE_START_DELAY_MS", default_value_t = 1000)]
    pub start_delay_ms: u64,
    /// The least gap between the last test_config and its trigger: seed drivers that read the
    /// trigger first crash, and one opens its trigger reader only once the config is in.
    #[arg(long, env = "FLOODGATE_CONFIG_GAP_MS", default_value_t = 1000)]
    pub config_gap_ms: u64,
    /// A driver that gives no completion signal (no final report, status or count) is done when
    /// its reports have not changed for this long (or three of its report intervals, if longer).
    #[arg(long, env = "FLOODGATE_QUIET_PERIOD_MS", default_value_t = 5000)]
    pub quiet_period_ms: u64,
    /// A driver of another implementation that has sent no report this long after the start
    /// (or twice the test's paced duration, if longer) is lost.
    #[arg(
        long,
        env = "FLOODGATE_NO_REPORT_TIMEOUT_MS",
        default_value_t = 120_000
    )]
    pub no_report_timeout_ms: u64,
    #[command(flatten)]
    pub seed: SeedArgs,
    #[command(flatten)]
    pub deployment: DeploymentArgs,
}

#[derive(Args, Debug)]
pub struct DriverArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Address of the orchestrator (as the spec requires every node to be told).
    #[arg(long, env = "FLOODGATE_ORCHESTRATOR")]
    pub orchestrator: String,
    /// Unique node ID (generated when absent).
    #[arg(long, env = "FLOODGATE_ID")]
    pub id: Option<String>,
    /// Address of the driver's own HTTP endpoint (health; port 0 picks one).
    #[arg(long, env = "FLOODGATE_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Address to report as node_IP (default: the bound listen address).
    #[arg(long, env = "FLOODGATE_ADVERTISE")]
    pub advertise: Option<String>,
    /// SQLite metrics store (default: .floodgate/driver-<id>.sqlite).
    #[arg(long, env = "FLOODGATE_STORE")]
    pub store: Option<PathBuf>,
    #[arg(long, env = "FLOODGATE_HEARTBEAT_MS", default_value_t = 1000)]
    pub heartbeat_ms: u64,
    /// Interval of cumulative metrics reports during a test (at most 1000).
    #[arg(long, env = "FLOODGATE_REPORT_MS", default_value_t = 500)]
    pub report_ms: u64,
    /// Target URL for tests whose config names none (orchestrators of other implementations).
    /// A URL in the config (`target`, `target_url`, `test_server` or `url`) wins over it.
    #[arg(long, env = "FLOODGATE_TARGET")]
    pub target: Option<String>,
    /// Requests per driver for tests whose config names no message_count_per_driver.
    #[arg(long, env = "FLOODGATE_DEFAULT_COUNT", default_value_t = crate::driver::DEFAULT_COUNT)]
    pub default_count: u64,
    /// This driver's capacity, by which a test given in totals is shared: cores, or a pod's CPU
    /// (0.001 to 4096; default: the cores this process may run on).
    #[arg(long, env = "FLOODGATE_CAPACITY")]
    pub capacity: Option<f64>,
    /// The capacity in millicores, as Kubernetes' downward API gives a pod's CPU (used when
    /// --capacity is absent; --capacity wins).
    #[arg(long, env = "FLOODGATE_CAPACITY_MILLICORES")]
    pub capacity_millicores: Option<u64>,
    #[command(flatten)]
    pub seed: SeedArgs,
}

/// The API token a client sends: from FLOODGATE_TOKEN, or the first token of this file.
#[derive(Args, Debug, Clone)]
pub struct TokenArgs {
    /// File whose first token (the orchestrator's token-file format) is sent as the API token;
    /// without it, the environment variable FLOODGATE_TOKEN is sent, if set.
    #[arg(long, env = "FLOODGATE_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// The orchestrator's REST address.
    #[arg(long, env = "FLOODGATE_ORCHESTRATOR", default_value = "127.0.0.1:8090")]
    pub orchestrator: String,
    #[command(flatten)]
    pub token: TokenArgs,
    /// Output format.
    #[arg(long, short = 'o', default_value = "table")]
    pub output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

// Parsed once at start-up: the size of the largest variant costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum TestCommand {
    /// Create and trigger a test, show progress, print the results. Boxed: its flags make it
    /// far larger than the other commands.
    Run(Box<RunArgs>),
    /// List tests.
    List(ClientArgs),
    /// Show one test.
    Show {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Change a running test's pace (the way it was given: --total-rate, --rate or
    /// --delay-ms); every driver switches at one instant about a second ahead.
    SetRate(SetRateArgs),
    /// Stop a running test.
    Stop {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Download a finished test's report: HTML (self-contained, with charts), CSV or JSON.
    Report(ReportArgs),
}

#[derive(Args, Debug)]
pub struct SetRateArgs {
    /// The test's id.
    pub id: String,
    /// Requests/s over all drivers (a test given in totals), shared as its total was.
    #[arg(long, conflicts_with_all = ["rate", "delay_ms"], required_unless_present_any = ["rate", "delay_ms"])]
    pub total_rate: Option<f64>,
    /// Requests/s per driver (a capped Avalanche).
    #[arg(long, conflicts_with = "delay_ms")]
    pub rate: Option<f64>,
    /// Tsunami: milliseconds between requests on each driver.
    #[arg(long)]
    pub delay_ms: Option<f64>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The test's id.
    pub id: String,
    /// Export format (default: from the --out file's extension, else html).
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<ReportFormat>,
    /// Write to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The orchestrator's REST address.
    #[arg(long, env = "FLOODGATE_ORCHESTRATOR", default_value = "127.0.0.1:8090")]
    pub orchestrator: String,
    #[command(flatten)]
    pub token: TokenArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// One self-contained HTML file: spec, tables, charts; opens offline.
    Html,
    /// One row for all drivers and one per driver.
    Csv,
    /// The test's view plus its chart points.
    Json,
    /// The chart points (time series), one row per point.
    SeriesCsv,
}

impl ReportFormat {
    /// The export's name under `/api/v1/tests/{id}/`.
    pub fn endpoint(self) -> &'static str {
        match self {
            ReportFormat::Html => "report.html",
            ReportFormat::Csv => "report.csv",
            ReportFormat::Json => "report.json",
            ReportFormat::SeriesCsv => "series.csv",
        }
    }

    /// The format a file name asks for by its extension (`x.series.csv` is the time series).
    pub fn from_file_name(name: &str) -> Option<Self> {
        let name = name.to_ascii_lowercase();
        [
            (".series.csv", ReportFormat::SeriesCsv),
            (".html", ReportFormat::Html),
            (".htm", ReportFormat::Html),
            (".csv", ReportFormat::Csv),
            (".json", ReportFormat::Json),
        ]
        .into_iter()
        .find(|(ext, _)| name.ends_with(ext))
        .map(|(_, f)| f)
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TestKind {
    Tsunami,
    Avalanche,
}

/// How a test's totals are shared among its drivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    Capacity,
    Equal,
    Measured,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Test type.
    #[arg(long = "type", value_enum)]
    pub kind: TestKind,
    /// Target URL, e.g. http://127.0.0.1:8080/ping.
    #[arg(long, required_unless_present = "mix", conflicts_with = "mix")]
    pub url: Option<String>,
    /// A request mix instead of --url: a YAML or JSON file with a list of requests, each
    /// `{name, url, method, headers, body or body_file, weight, checks}` (docs/cli.md).
    #[arg(long, value_name = "FILE")]
    pub mix: Option<PathBuf>,
    /// The request body from a file.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["body", "mix"])]
    pub body_file: Option<PathBuf>,
    #[command(flatten)]
    pub checks: CheckArgs,
    /// Requests per driver (or a time-bound test: `--duration`, `--stage`; or a total:
    /// `--total-requests`).
    #[arg(long, short = 'n', required_unless_present_any = ["duration", "stages", "total_requests"])]
    pub requests: Option<u64>,
    /// Requests over all drivers, shared by their declared capacity (see --split).
    #[arg(long, conflicts_with = "requests")]
    pub total_requests: Option<u64>,
    /// Requests/s over all drivers, shared as --total-requests is (instead of --delay-ms or
    /// --rate), with --total-requests or --duration.
    #[arg(long, conflicts_with_all = ["rate", "delay_ms"])]
    pub total_rate: Option<f64>,
    /// How totals are shared: capacity (default: declared), equal, or measured (each driver's
    /// unpaced rate against the same target in an earlier test).
    #[arg(long, value_enum)]
    pub split: Option<SplitArg>,
    /// A driver that hears neither the orchestrator nor a majority of the drivers for this
    /// long stops sending (default 15000; 0 turns the fail-safe off).
    #[arg(long)]
    pub fail_safe_ms: Option<u64>,
    #[command(flatten)]
    pub timing: TimingArgs,
    /// Tsunami: milliseconds between requests on each driver.
    #[arg(long)]
    pub delay_ms: Option<f64>,
    /// Throughput cap per driver in requests/s (default: uncapped).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Connections per driver.
    #[arg(long, short = 'c')]
    pub concurrency: Option<u64>,
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Number of drivers (default: all alive, up to 8).
    #[arg(long)]
    pub drivers: Option<u64>,
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Extra header, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    pub headers: Vec<String>,
    #[arg(long)]
    pub body: Option<String>,
    /// Create the test without triggering it.
    #[arg(long)]
    pub no_trigger: bool,
    /// A pass/fail threshold on the merged data, e.g. 'p99 < 250ms', 'p(99.9) < 1s',
    /// 'error_rate < 0.1%', 'rps >= 950' (repeatable). Exit code 3 when one fails.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// A threshold that also stops the test on every driver as soon as it fails, evaluated
    /// live on the merged data from --abort-delay after the start (repeatable).
    #[arg(long = "abort-on-fail", value_name = "EXPR")]
    pub abort_on_fail: Vec<String>,
    /// How long after the start the --abort-on-fail thresholds are first evaluated (e.g. 10s).
    #[arg(long, value_name = "DURATION")]
    pub abort_delay: Option<String>,
    #[command(flatten)]
    pub transport: TransportArgs,
}

/// What a response must look like to count as a success (default: a 2xx status).
#[derive(Args, Debug, Default, Clone)]
pub struct CheckArgs {
    /// Expected statuses: codes, ranges and classes, e.g. '200-299,304' or '2xx,404'.
    #[arg(long, value_name = "LIST")]
    pub check_status: Option<String>,
    /// The response body must contain this text.
    #[arg(long, value_name = "TEXT")]
    pub check_body: Option<String>,
    /// The response body must be JSON with this value at this pointer, e.g. '/status="ok"' or
    /// '/items/0/id=7' (repeatable).
    #[arg(long, value_name = "/POINTER=JSON")]
    pub check_json: Vec<String>,
}

/// HTTP version and TLS, for `test run` and `load` alike.
#[derive(Args, Debug, Default, Clone)]
pub struct TransportArgs {
    /// Speak HTTP/2: h2 via ALPN over https://, h2c (prior knowledge) over http://.
    #[arg(long)]
    pub http2: bool,
    /// Concurrent streams per HTTP/2 connection (as h2load -m, oha -p; default 1);
    /// --concurrency stays the number of connections.
    #[arg(long, value_name = "N")]
    pub streams: Option<u64>,
    /// Trust the CA certificates of this PEM file instead of the system roots (the file is
    /// read here and its certificates sent with the test).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Accept any TLS certificate (test environments only).
    #[arg(long)]
    pub insecure: bool,
    /// TLS server name (SNI and the certificate check) instead of the URL's host.
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Target URL.
    #[arg(long, required_unless_present = "mix", conflicts_with = "mix")]
    pub url: Option<String>,
    /// A request mix instead of --url: a YAML or JSON file, as for `test run --mix`.
    #[arg(long, value_name = "FILE")]
    pub mix: Option<PathBuf>,
    #[command(flatten)]
    pub checks: CheckArgs,
    /// Requests to send (or a time-bound run: `--duration`, `--stage`).
    #[arg(long, short = 'n', required_unless_present_any = ["duration", "stages"])]
    pub requests: Option<u64>,
    #[command(flatten)]
    pub timing: TimingArgs,
    /// Connections.
    #[arg(long, short = 'c', default_value_t = 50)]
    pub concurrency: u64,
    /// Throughput cap in requests/s.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Tsunami delay in milliseconds between requests.
    #[arg(long, default_value_t = 0.0)]
    pub delay_ms: f64,
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub transport: TransportArgs,
    /// A pass/fail threshold on this run's data, e.g. 'p99 < 250ms' (repeatable), evaluated at
    /// the end. Exit code 3 when one does not pass.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
}

/// A time-bound test instead of a count (issue 12): `floodgate test run` and `floodgate load`.
#[derive(Args, Debug, Clone, Default)]
pub struct TimingArgs {
    /// Send for this long instead of a count, e.g. `30s`, `2m` (at the test's pace, or as fast
    /// as the target answers when unpaced).
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with_all = ["requests", "stages"])]
    pub duration: Option<std::time::Duration>,
    /// A rate stage, `DURATION:RATE` (e.g. `30s:100`): requests/s per driver, reached by a
    /// linear ramp from the previous stage's rate over DURATION. Repeatable, in order; the
    /// test lasts their sum.
    #[arg(long = "stage", value_name = "DURATION:RATE", value_parser = parse_stage, conflicts_with = "requests")]
    pub stages: Vec<StageFlag>,
    /// The rate the first stage ramps from (default 0).
    #[arg(long, requires = "stages", conflicts_with_all = ["duration", "requests"])]
    pub start_rate: Option<f64>,
}

/// One `--stage DURATION:RATE`.
#[derive(Clone, Debug, PartialEq)]
pub struct StageFlag {
    pub duration: std::time::Duration,
    pub rate: f64,
}

/// Reads `--stage 30s:100`.
pub fn parse_stage(s: &str) -> Result<StageFlag, String> {
    let (d, r) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?} is not DURATION:RATE, e.g. 30s:100"))?;
    let duration = humantime::parse_duration(d.trim())
        .map_err(|e| format!("{d:?} is not a duration such as 30s: {e}"))?;
    let rate: f64 = r
        .trim()
        .parse()
        .map_err(|_| format!("{r:?} is not a rate in requests/s"))?;
    Ok(StageFlag { duration, rate })
}

#[cfg(test)]
mod timing_tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn stages_and_durations_parse_and_exclude_a_count() {
        assert_eq!(
            parse_stage("1m30s:250.5"),
            Ok(StageFlag {
                duration: std::time::Duration::from_secs(90),
                rate: 250.5
            })
        );
        for bad in ["30s", "30s:", ":100", "soon:100", "30s:fast"] {
            assert!(parse_stage(bad).is_err(), "{bad}");
        }
        let run = |args: &[&str]| {
            let mut all = vec!["floodgate", "load", "--url", "http://h/"];
            all.extend_from_slice(args);
            Cli::try_parse_from(all)
        };
        assert!(run(&[
            "--stage",
            "2s:100",
            "--stage",
            "2s:200",
            "--start-rate",
            "50"
        ])
        .is_ok());
        assert!(run(&["--duration", "3s"]).is_ok());
        assert!(run(&["-n", "5"]).is_ok());
        for bad in [
            &["--duration", "3s", "-n", "5"][..],
            &["--stage", "2s:1", "-n", "5"],
            &["--duration", "3s", "--stage", "2s:1"],
            &["--start-rate", "5", "--duration", "3s"],
            &[],
        ] {
            assert!(run(bad).is_err(), "{bad:?}");
        }
    }
}

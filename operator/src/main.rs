//! The `floodgate-operator` binary: the orchestrator (REST API, dashboard, Prometheus metrics,
//! Kafka runtime controller) plus the LoadTest controller, in one process.

use clap::Parser;
use floodgate::orchestrator::{Orchestrator, OrchestratorConfig};
use floodgate_operator::controller::{self, Context};
use floodgate_operator::resources::DriverDefaults;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "floodgate-operator",
    version,
    about = "Runs Floodgate LoadTests on Kubernetes"
)]
struct Args {
    /// Kafka bootstrap address.
    #[arg(long, env = "FLOODGATE_KAFKA")]
    kafka: String,
    /// Address of the REST API, dashboard and /metrics.
    #[arg(long, env = "FLOODGATE_LISTEN", default_value = "127.0.0.1:8090")]
    listen: String,
    /// Watch only this namespace (default: all).
    #[arg(long, env = "FLOODGATE_NAMESPACE")]
    namespace: Option<String>,
    /// Image of the driver pods.
    #[arg(
        long,
        env = "FLOODGATE_DRIVER_IMAGE",
        default_value = "floodgate/node:0.1.0"
    )]
    driver_image: String,
    /// The orchestrator address drivers are told (the operator's Service).
    #[arg(
        long,
        env = "FLOODGATE_ORCHESTRATOR_ADDRESS",
        default_value = "floodgate:8090"
    )]
    orchestrator_address: String,
    #[arg(long, env = "FLOODGATE_TOPIC_PREFIX", default_value = "")]
    topic_prefix: String,
    /// The orchestrator's SQLite store.
    #[arg(
        long,
        env = "FLOODGATE_STORE",
        default_value = ".floodgate/operator.sqlite"
    )]
    store: PathBuf,
    /// Unique node ID of the orchestrator.
    #[arg(long, env = "FLOODGATE_ID", default_value = "floodgate-operator")]
    id: String,
    #[arg(long, env = "FLOODGATE_HEARTBEAT_TIMEOUT_MS", default_value_t = 3000)]
    heartbeat_timeout_ms: u64,
    /// How long start-up waits for Kafka before the operator exits (and is restarted).
    #[arg(long, env = "FLOODGATE_KAFKA_WAIT_S", default_value_t = 600)]
    kafka_wait_s: u64,
    #[arg(long, env = "FLOODGATE_LOG_FORMAT", default_value = "human")]
    log_format: floodgate::cli::LogFormat,
    #[arg(long, env = "FLOODGATE_LOG", default_value = "info")]
    log: String,
    #[command(flatten)]
    deployment: floodgate::cli::DeploymentArgs,
    #[command(flatten)]
    kafka_security: floodgate::cli::KafkaSecurityArgs,
    /// A Secret, in each LoadTest's namespace, that driver pods take their Kafka credentials
    /// from (its keys as FLOODGATE_KAFKA_* variables, its files mounted at /etc/floodgate/kafka).
    /// Required when the operator itself has a Kafka password.
    #[arg(long, env = "FLOODGATE_DRIVER_KAFKA_SECRET")]
    driver_kafka_secret: Option<String>,
    #[command(flatten)]
    access: floodgate::cli::AccessArgs,
}

fn main() {
    let args: Args = floodgate::app::parse_args_or_exit();
    let runtime = floodgate::app::runtime_or_exit(args.log_format, &args.log);
    if let Err(e) = runtime.block_on(run(args)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let (targets, caps) = args.deployment.policy()?;
    if args.kafka_security.has_credentials() && args.driver_kafka_secret.is_none() {
        anyhow::bail!(
            "a Kafka password is set but --driver-kafka-secret is not: drivers get credentials only from a Secret"
        );
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {} (--listen): {e}", args.listen))?;
    let advertise = listener.local_addr()?.to_string();
    // Before serving anything: an API open to the network without a token is refused.
    let access = floodgate::app::access(&args.access, listener.local_addr()?)?;
    // Serve from the start: `/healthz` says "starting" while Kafka and the API server are
    // still being reached, so a liveness probe does not restart an operator that is waiting.
    let ready: Arc<tokio::sync::OnceCell<axum::Router>> = Arc::default();
    let app = axum::Router::new().fallback(serve_when_ready(ready.clone()));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    println!("floodgate operator listening on {advertise}");
    let client = kube::Client::try_default().await.map_err(|e| {
        anyhow::anyhow!("cannot reach the Kubernetes API (in-cluster or KUBECONFIG): {e}")
    })?;
    // Before the orchestrator reads the metrics topic: the running tests its store may not
    // know (a new pod), and the positions their reports begin at.
    let topics = floodgate::protocol::Topics::with_prefix(&args.topic_prefix);
    let found = floodgate_operator::takeover::running_tests(
        &client,
        args.namespace.as_deref(),
        &topics.metrics,
    )
    .await?;
    let (orchestrator, refused) = Orchestrator::start_adopting(
        OrchestratorConfig {
            heartbeat_timeout: Duration::from_millis(args.heartbeat_timeout_ms.max(1)),
            // Kafka may come up long after the operator on a new cluster; /healthz says "starting".
            kafka_wait: Duration::from_secs(args.kafka_wait_s),
            targets,
            caps,
            kafka_security: args.kafka_security.security(),
            ..OrchestratorConfig::new(&args.id, &args.kafka, &advertise, topics, args.store)
        },
        found.adoptions,
    )
    .await?;
    let mut not_taken_over = found.refused;
    not_taken_over.extend(refused);
    let ctx = Arc::new(Context {
        client,
        orchestrator: orchestrator.clone(),
        defaults: DriverDefaults {
            image: args.driver_image,
            kafka: args.kafka,
            orchestrator: args.orchestrator_address,
            topic_prefix: args.topic_prefix,
            kafka_env: args.kafka_security.plain_env(),
            kafka_secret: args.driver_kafka_secret,
        },
        counters: Default::default(),
        phases: Default::default(),
        not_taken_over,
    });
    let metrics_ctx = ctx.clone();
    orchestrator.add_metrics_source(Arc::new(move || metrics_ctx.metrics_text()));
    let _ = ready.set(floodgate::api::router(orchestrator, access));
    tracing::info!("operator ready");
    tokio::select! {
        served = server => served??,
        // The controller stops on SIGTERM/SIGINT (it listens for them itself).
        () = controller::run(ctx, args.namespace) => tracing::info!("operator stopped"),
    }
    Ok(())
}

/// Routes every request to the full router once it exists; before that, `/healthz` and `/livez` answer
/// 200 `starting` and everything else 503.
fn serve_when_ready(
    ready: Arc<tokio::sync::OnceCell<axum::Router>>,
) -> impl Fn(
    axum::extract::Request,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = axum::response::Response> + Send>>
       + Clone {
    use axum::response::IntoResponse;
    use tower::ServiceExt;
    move |req: axum::extract::Request| {
        let ready = ready.clone();
        Box::pin(async move {
            match ready.get() {
                Some(router) => router.clone().oneshot(req).await.into_response(),
                None if matches!(req.uri().path(), "/healthz" | "/livez") => axum::Json(serde_json::json!({"status": "starting"})).into_response(),
                None => (axum::http::StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({"error": "the operator is starting (waiting for Kafka)"}))).into_response(),
            }
        })
    }
}

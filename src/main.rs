//! The `failover-dns` command: parses arguments, calls the library, maps errors to exit codes.

mod cli;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};

use cli::{client, table};

/// Authoritative DNS that moves service names from a failed primary to a healthy standby.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Config file (for `run`, the default command).
    #[arg(long, short, global = true, default_value = "conf/failover-dns.toml")]
    config: PathBuf,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Serve DNS and run health checks (the default).
    Run,
    /// Print the man page (roff), generated from this command line's own definition.
    #[command(hide = true)]
    Man,
    /// Validate the config and every zone file it names, then exit.
    Check,
    /// Print every service, what it answers and its members' health, from the running server.
    Status {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Stop answering a member (until `undrain`), e.g. before maintenance.
    Drain {
        /// Service name, e.g. www.svc.example.test.
        service: String,
        /// Member address.
        member: IpAddr,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Print each service's answers, then every change as it happens (from `GET /watch`);
    /// with --exec, run a command on each change.
    Watch {
        /// Services to watch (default: all).
        services: Vec<String>,
        /// Run this on each change (split on spaces, no shell), with FAILOVER_DNS_SERVICE,
        /// FAILOVER_DNS_FAMILY, FAILOVER_DNS_FROM, FAILOVER_DNS_TO, FAILOVER_DNS_SERIAL and
        /// FAILOVER_DNS_REASON set.
        #[arg(long)]
        exec: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Let the checks decide about a member again.
    Undrain {
        /// Service name.
        service: String,
        /// Member address.
        member: IpAddr,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// How to reach a running server's API; by default, `[server] http` and its token from the
/// config.
#[derive(clap::Args)]
struct ApiArgs {
    /// API base URL, e.g. http://127.0.0.1:8053.
    #[arg(long)]
    api: Option<String>,
    /// Bearer token for changes (default: the config's http_token or http_token_file).
    #[arg(long, env = "FAILOVER_DNS_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let command = cli.command.unwrap_or(Command::Run);
    if let Command::Man = command {
        let page = clap_mangen::Man::new(<Cli as clap::CommandFactory>::command());
        return match page.render(&mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: cannot write the man page: {error}");
                ExitCode::FAILURE
            }
        };
    }
    if let Command::Status { api }
    | Command::Drain { api, .. }
    | Command::Undrain { api, .. }
    | Command::Watch { api, .. } = &command
    {
        return exit_code(runtime().and_then(|rt| rt.block_on(client(&command, api, &cli.config))));
    }
    let plan = match failover_dns::config::load(&cli.config) {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    match command {
        Command::Check => {
            // A start also reads the overrides; a damaged file does not stop it (it is kept
            // aside and the members it names start drained), but it deserves a look.
            if let Err(error) = failover_dns::health::admin::load(&plan.server.state_file) {
                eprintln!(
                    "warning: {error}; a start would keep it aside and drain every member it names"
                );
            }
            for service in &plan.services {
                if let failover_dns::config::CheckKind::Script(script) = &service.check.kind
                    && let Some(program) = script.command.first()
                    && let Some(problem) = failover_dns::health::script::unrunnable(program)
                {
                    eprintln!(
                        "warning: {}: the check command of {} cannot run ({problem}); every member would fail its checks",
                        cli.config.display(),
                        service.name
                    );
                }
            }
            if let Some((needed, hard)) = failover_dns::limits::Descriptors::shortfall(&plan) {
                eprintln!(
                    "warning: this config needs about {needed} file descriptors (a check and, with hold = true, a held connection per member; tcp_max_clients; http_max_clients) but the hard limit here is {hard}; a start would lower the connection caps to fit: raise it (LimitNOFILE= in systemd, ulimit -Hn)"
                );
            }
            println!(
                "{}: ok ({} zones, {} services)",
                cli.config.display(),
                plan.zones.len(),
                plan.services.len()
            );
            ExitCode::SUCCESS
        }
        _ => {
            // Before the runtime's threads start: taking them changes the environment.
            let inherited = failover_dns::dns::socket::Inherited::from_env();
            exit_code(runtime().and_then(|rt| Ok(rt.block_on(failover_dns::run(plan, inherited))?)))
        }
    }
}

/// Success, or the error on stderr and exit status 1.
fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("cannot start the async runtime")
}

/// Runs `status`, `drain` or `undrain` against the API named by `args` or the config.
async fn client(command: &Command, args: &ApiArgs, config: &Path) -> anyhow::Result<()> {
    let (api, token) = match &args.api {
        Some(api) => (api.clone(), args.token.clone()),
        None => {
            let plan = failover_dns::config::load(config)?;
            let Some(http) = plan.server.http else {
                bail!(
                    "{} has no [server] http address; set one, or pass --api URL",
                    config.display()
                );
            };
            (
                format!("http://{http}"),
                args.token.clone().or(plan.server.http_token),
            )
        }
    };
    match command {
        Command::Status { .. } => {
            let status = client::status(&api).await?;
            print!("{}", table::render_table(&status));
        }
        Command::Drain {
            service, member, ..
        } => {
            let warning =
                client::set_admin(&api, token.as_deref(), service, *member, "drain").await?;
            println!("{member} of {service} is drained");
            warn_unsaved(warning);
        }
        Command::Undrain {
            service, member, ..
        } => {
            let warning =
                client::set_admin(&api, token.as_deref(), service, *member, "auto").await?;
            println!("{member} of {service} follows its checks again");
            warn_unsaved(warning);
        }
        Command::Watch { services, exec, .. } => {
            cli::watch::watch(&api, services, exec.as_deref()).await?;
        }
        Command::Run | Command::Check | Command::Man => {}
    }
    Ok(())
}

fn warn_unsaved(warning: Option<String>) {
    if let Some(warning) = warning {
        eprintln!("warning: {warning}");
    }
}

/// INFO: operations events (starts, state changes, reloads), never one line per query.
const DEFAULT_LOG_FILTER: &str = "info";

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FAILOVER_DNS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder
            .fmt_fields(failover_dns::logfmt::SentenceFirst)
            .init(),
        LogFormat::Json => builder.json().init(),
    }
}

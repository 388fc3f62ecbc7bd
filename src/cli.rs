//! The command line: `serve` (the default), `check`, `render`, and `deliveries` / `send-test`
//! (which drive a running relay's admin API, see [`crate::admin_cli`]).

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::Config;
use crate::gitee::EventKind;
use crate::message::{Audience, Target};
use crate::platform::PlatformKind;
use crate::render::TemplateSet;
use crate::startup::Relay;
use crate::telemetry::{self, LogFormat};
use crate::time_util::now_ms;

#[derive(Debug, Parser)]
#[command(
    name = "gitee-relay",
    version,
    about = "Relay Gitee webhooks to DingTalk, WeCom, Feishu/Lark and Slack group robots"
)]
pub struct Cli {
    /// Log format: human-readable lines or JSON objects.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the relay (the default when no command is given).
    Serve(ConfigArg),
    /// Validate the config and render every template a channel would use against the
    /// built-in sample events. Exit 1 on any problem.
    Check(ConfigArg),
    /// Print the exact JSON body that would be posted for a Gitee payload.
    Render(RenderArgs),
    /// List, show and redeliver the deliveries of a running relay (through its admin API).
    #[command(subcommand)]
    Deliveries(crate::admin_cli::DeliveriesCommand),
    /// Queue a test message (a built-in sample, marked as a test) for a channel of a running
    /// relay (through its admin API).
    SendTest(crate::admin_cli::SendTestArgs),
}

#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// The config file.
    #[arg(long, short, env = "GITEE_RELAY_CONFIG", default_value = "config.yaml")]
    pub config: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// Target platform: dingtalk, wecom, feishu (lark) or slack.
    #[arg(long, value_parser = parse_platform, required_unless_present = "channel")]
    pub platform: Option<PlatformKind>,
    /// A folder of template overrides (<dir>/<platform>/<event>.hbs).
    #[arg(long, conflicts_with = "channel")]
    pub templates: Option<PathBuf>,
    /// Render exactly as this channel of the config would: its platform, its templates, the
    /// config's timezone and its people's @mentions (instead of --platform and --templates).
    #[arg(long, conflicts_with = "platform")]
    pub channel: Option<String>,
    /// The config file --channel is read from.
    #[arg(long, short, env = "GITEE_RELAY_CONFIG", default_value = "config.yaml")]
    pub config: PathBuf,
    /// The event (push, tag_push, issue, merge_request, note or a Gitee header such as
    /// "Push Hook"); by default taken from the payload's hook_name.
    #[arg(long)]
    pub event: Option<String>,
    /// Render as a test delivery (what Gitee's "Test" button sends).
    #[arg(long)]
    pub test: bool,
    /// Pretty-print instead of the exact compact body.
    #[arg(long)]
    pub pretty: bool,
    /// The Gitee webhook body, a JSON file ("-" reads standard input).
    pub payload: PathBuf,
}

fn parse_platform(s: &str) -> Result<PlatformKind, String> {
    PlatformKind::parse(s)
        .ok_or_else(|| format!("`{s}` is not one of dingtalk, wecom, feishu, lark, slack"))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve(ConfigArg {
        config: std::env::var_os("GITEE_RELAY_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("config.yaml")),
    }));
    match command {
        Command::Serve(args) => {
            // Held until `serve` returns: dropping it writes the last queued lines.
            let _logs = telemetry::init(cli.log_format);
            serve(&args.config)
        }
        Command::Check(args) => check(&args.config),
        Command::Render(args) => render(&args),
        Command::Deliveries(command) => crate::admin_cli::deliveries(&command),
        Command::SendTest(args) => crate::admin_cli::send_test(&args),
    }
}

fn serve(path: &std::path::Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime can be built");
    runtime.block_on(async move {
        let relay = match Relay::start(config).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        wait_for_stop_signal().await;
        tracing::info!("stopping: no new webhooks; finishing in-flight sends");
        relay.stop(Duration::from_secs(10)).await;
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

async fn wait_for_stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn check(path: &std::path::Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let problems = crate::check::check_templates(&config);
    if problems.is_empty() {
        println!(
            "{}: ok — {} source(s), {} channel(s), {} route(s); {} template renders checked",
            path.display(),
            config.sources.len(),
            config.channels.len(),
            config.routes.len(),
            crate::check::render_count(&config)
        );
        ExitCode::SUCCESS
    } else {
        for p in &problems {
            eprintln!("{p}");
        }
        ExitCode::FAILURE
    }
}

/// The templates and the people a render uses: the named channel's, as the relay would
/// load them from the config, or the given platform's with the given overrides and nobody
/// to mention (no audience).
fn render_setup(args: &RenderArgs) -> Result<(TemplateSet, Option<Audience>), String> {
    let Some(name) = &args.channel else {
        let platform = args.platform.ok_or("say which platform with --platform")?;
        let templates =
            TemplateSet::load(platform, args.templates.as_deref()).map_err(|e| e.to_string())?;
        return Ok((templates, None));
    };
    let config = Config::load(&args.config).map_err(|e| e.to_string())?;
    let Some(channel) = config.channels.get(name) else {
        let known: Vec<&str> = config.channels.keys().map(String::as_str).collect();
        return Err(format!(
            "{}: no channel named `{name}` (channels: {})",
            args.config.display(),
            known.join(", ")
        ));
    };
    let dir = channel.templates.as_ref().or(config.templates.as_ref());
    let templates = TemplateSet::load(channel.platform, dir.map(PathBuf::as_path))
        .map_err(|e| e.to_string())?
        .with_timezone(&config.timezone);
    Ok((templates, Some(Audience::from_config(&config))))
}

fn render(args: &RenderArgs) -> ExitCode {
    let body = if args.payload.as_os_str() == "-" {
        let mut buf = Vec::new();
        if let Err(e) = std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf) {
            eprintln!("cannot read standard input: {e}");
            return ExitCode::FAILURE;
        }
        buf
    } else {
        match std::fs::read(&args.payload) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("cannot read {}: {e}", args.payload.display());
                return ExitCode::FAILURE;
            }
        }
    };
    let kind = match &args.event {
        Some(name) => match EventKind::parse(name) {
            Some(k) => k,
            None => {
                eprintln!(
                    "`{name}` is not an event: use push, tag_push, issue, merge_request or note"
                );
                return ExitCode::FAILURE;
            }
        },
        None => match crate::gitee::payload::detect_kind(None, &body) {
            Some(k) => k,
            None => {
                eprintln!("the payload has no known hook_name; say which event it is with --event");
                return ExitCode::FAILURE;
            }
        },
    };
    let (templates, audience) = match render_setup(args) {
        Ok(setup) => setup,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let target = match (&audience, &args.channel) {
        (Some(audience), Some(channel)) => Target { audience, channel },
        _ => Target::nobody(),
    };
    match crate::message::render(&templates, kind, &body, "cli", args.test, now_ms(), &target) {
        Ok(value) => {
            let out = if args.pretty {
                serde_json::to_string_pretty(&value)
            } else {
                serde_json::to_string(&value)
            };
            println!("{}", out.expect("a JSON value serialises"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

//! `gitee-relay deliveries list|show|redeliver` and `gitee-relay send-test CHANNEL`: the admin
//! API for shell users. They talk to the running relay over HTTP (so a redelivery or a test
//! message wakes its dispatcher at once, and the same code serves SQLite and PostgreSQL):
//! the address is `--url` (`GITEE_RELAY_URL`), else the config's `listen`; the token is
//! `GITEE_RELAY_ADMIN_TOKEN` (or `--token`), else the config's `admin.token`.

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;
use crate::render::helpers::{DEFAULT_TIME_ZONE, format_time};

#[derive(Debug, Args)]
pub struct Remote {
    /// The relay's base URL, e.g. http://127.0.0.1:8080 (default: from the config's `listen`).
    #[arg(long, env = "GITEE_RELAY_URL")]
    pub url: Option<String>,
    /// The admin token (default: the config's admin.token). Prefer the environment variable:
    /// a command-line argument is visible to other users of the machine.
    #[arg(long, env = "GITEE_RELAY_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The config file, read for the address and the token when they are not given.
    #[arg(long, short, env = "GITEE_RELAY_CONFIG", default_value = "config.yaml")]
    pub config: PathBuf,
    /// Print the API's JSON answer instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// List deliveries, newest first.
    List(ListArgs),
    /// Show one delivery with every attempt.
    Show(IdArgs),
    /// Send a delivered or dead delivery's event to its channel again (rendered with today's
    /// templates).
    Redeliver(IdArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this channel.
    #[arg(long)]
    pub channel: Option<String>,
    /// Only this state: pending, sending, retrying, delivered or dead.
    #[arg(long)]
    pub state: Option<String>,
    /// Only the deliveries of this event id.
    #[arg(long)]
    pub event: Option<i64>,
    /// At most this many (1 to 200).
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
    /// Older than this delivery id (the `next:` line of the previous page).
    #[arg(long)]
    pub before: Option<i64>,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// The delivery id.
    pub id: i64,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Args)]
pub struct SendTestArgs {
    /// The channel to send to.
    pub channel: String,
    /// The built-in sample to send (see the console's playground for the list).
    #[arg(long, default_value = "push")]
    pub sample: String,
    #[command(flatten)]
    pub remote: Remote,
}

/// Where and how to reach the relay.
struct Target {
    base: String,
    token: String,
    zone: String,
}

fn resolve(remote: &Remote) -> Result<Target, String> {
    let given = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let (url, token) = (given(&remote.url), given(&remote.token));
    let config = if url.is_none() || token.is_none() {
        Some(Config::load(&remote.config).map_err(|e| {
            format!("{e}\n(give the relay's address with --url or GITEE_RELAY_URL and its token with GITEE_RELAY_ADMIN_TOKEN, or point --config at its config)")
        })?)
    } else {
        Config::load(&remote.config).ok()
    };
    let base = match url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => {
            let listen = &config.as_ref().expect("loaded above").listen;
            format!("http://{}", connectable(listen))
        }
    };
    let token = match token.or_else(|| {
        config
            .as_ref()
            .and_then(|c| c.admin.token.as_ref())
            .map(|t| t.expose().to_owned())
    }) {
        Some(t) => t,
        None => {
            return Err(
                "no admin token: set GITEE_RELAY_ADMIN_TOKEN (or admin.token in the config)".into(),
            );
        }
    };
    let zone = config
        .map(|c| c.timezone)
        .unwrap_or_else(|| DEFAULT_TIME_ZONE.to_owned());
    Ok(Target { base, token, zone })
}

/// `0.0.0.0:8080` listens everywhere; connect to loopback.
fn connectable(listen: &str) -> String {
    match listen.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => {
            let ip: std::net::IpAddr = if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            };
            std::net::SocketAddr::new(ip, addr.port()).to_string()
        }
        _ => listen.to_owned(),
    }
}

/// One API call: the JSON answer, or the API's error in words.
fn call(
    target: &Target,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        let mut req = client
            .request(method, format!("{}/api{path}", target.base))
            .bearer_auth(&target.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.map_err(|e| {
            format!(
                "cannot reach the relay at {}: {}",
                target.base,
                without_url(&e)
            )
        })?;
        let status = res.status();
        let text = res.text().await.map_err(|e| without_url(&e))?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            Ok(value)
        } else {
            let message = value["error"]
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            Err(format!("the relay answered {status}: {message}"))
        }
    })
}

fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "");
    }
    text
}

fn time(ms: &Value, zone: &str) -> String {
    ms.as_i64()
        .and_then(|ms| format_time(ms, "%Y-%m-%d %H:%M:%S", zone).ok())
        .unwrap_or_else(|| "-".into())
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `push`, `issue open`: the action only when it adds something.
fn what(d: &Value) -> String {
    let (kind, action) = (text(&d["kind"]), text(&d["action"]));
    if action.is_empty() || action == "-" || action == kind {
        kind
    } else {
        format!("{kind} {action}")
    }
}

fn one_line(s: &str, max: usize) -> String {
    let s = s.replace(['\n', '\r'], " ");
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("JSON serialises")
    );
}

pub fn deliveries(command: &DeliveriesCommand) -> ExitCode {
    finish(match command {
        DeliveriesCommand::List(args) => list(args),
        DeliveriesCommand::Show(args) => show(args),
        DeliveriesCommand::Redeliver(args) => redeliver(args),
    })
}

fn list(args: &ListArgs) -> Result<(), String> {
    let target = resolve(&args.remote)?;
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("limit", &args.limit.to_string());
    if let Some(c) = &args.channel {
        query.append_pair("channel", c);
    }
    if let Some(s) = &args.state {
        query.append_pair("state", s);
    }
    if let Some(e) = args.event {
        query.append_pair("event", &e.to_string());
    }
    if let Some(b) = args.before {
        query.append_pair("before", &b.to_string());
    }
    let v = call(
        &target,
        reqwest::Method::GET,
        &format!("/deliveries?{}", query.finish()),
        None,
    )?;
    if args.remote.json {
        print_json(&v);
        return Ok(());
    }
    let items = v["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        println!("no deliveries match");
        return Ok(());
    }
    println!(
        "{:>7}  {:19}  {:14}  {:9}  {:>5}  {:36}  LAST ERROR",
        "ID", "CREATED", "CHANNEL", "STATE", "TRIES", "EVENT"
    );
    for d in &items {
        let event = format!("#{} {} {}", text(&d["event_id"]), what(d), text(&d["repo"]));
        let line = format!(
            "{:>7}  {:19}  {:14}  {:9}  {:>5}  {:36}  {}",
            text(&d["id"]),
            time(&d["created_ms"], &target.zone),
            one_line(&text(&d["channel"]), 14),
            text(&d["state"]),
            text(&d["attempts"]),
            one_line(&event, 36),
            d["last_error"]
                .as_str()
                .map(|e| one_line(e, 80))
                .unwrap_or_default(),
        );
        println!("{}", line.trim_end());
    }
    if let Some(next) = v["next_before"].as_i64() {
        println!("next: --before {next}");
    }
    Ok(())
}

fn show(args: &IdArgs) -> Result<(), String> {
    let target = resolve(&args.remote)?;
    let v = call(
        &target,
        reqwest::Method::GET,
        &format!("/deliveries/{}", args.id),
        None,
    )?;
    if args.remote.json {
        print_json(&v);
        return Ok(());
    }
    let d = &v["delivery"];
    println!(
        "delivery {}  {}",
        text(&d["id"]),
        text(&d["state"]).to_uppercase()
    );
    println!(
        "channel   {} ({}) {}",
        text(&d["channel"]),
        text(&d["platform"]),
        text(&d["url"])
    );
    println!(
        "event     #{} {} {} from {}{}",
        text(&d["event_id"]),
        what(d),
        text(&d["repo"]),
        text(&d["source"]),
        if d["is_test"] == true { " (test)" } else { "" }
    );
    println!("received  {}", time(&d["received_ms"], &target.zone));
    if d["state"] == "retrying" {
        println!("next try  {}", time(&d["next_attempt_ms"], &target.zone));
    }
    let attempts = v["attempts"].as_array().cloned().unwrap_or_default();
    println!("attempts  {}", attempts.len());
    for a in &attempts {
        let status = a["reply"]["status"]
            .as_i64()
            .map_or("no reply".to_owned(), |s| format!("HTTP {s}"));
        println!(
            "  #{} {}  {} ms  {}  {}",
            text(&a["n"]),
            time(&a["started_ms"], &target.zone),
            text(&a["duration_ms"]),
            status,
            text(&a["outcome"])
        );
        println!("     POST {}", text(&a["request"]["url"]));
        if let Some(r) = a["reply"]["excerpt"].as_str().filter(|r| !r.is_empty()) {
            println!("     reply: {}", one_line(r, 200));
        }
        if let Some(e) = a["error"].as_str() {
            println!("     error: {}", one_line(e, 200));
        }
    }
    match (&v["message"]["body"], &v["message"]["error"]) {
        (Value::Null, e) => println!("message (rendered now): cannot render: {}", text(e)),
        (body, _) => println!(
            "message (rendered now with today's templates):\n{}",
            serde_json::to_string_pretty(body).unwrap_or_default()
        ),
    }
    Ok(())
}

fn redeliver(args: &IdArgs) -> Result<(), String> {
    let target = resolve(&args.remote)?;
    let v = call(
        &target,
        reqwest::Method::POST,
        &format!("/deliveries/{}/redeliver", args.id),
        Some(json!({})),
    )?;
    if args.remote.json {
        print_json(&v);
    } else {
        println!(
            "redelivery queued: delivery {} (event #{} to {})",
            text(&v["delivery"]["id"]),
            text(&v["delivery"]["event_id"]),
            text(&v["delivery"]["channel"])
        );
    }
    Ok(())
}

pub fn send_test(args: &SendTestArgs) -> ExitCode {
    finish((|| {
        let target = resolve(&args.remote)?;
        let path = format!(
            "/channels/{}/test",
            url::form_urlencoded::byte_serialize(args.channel.as_bytes()).collect::<String>()
        );
        let v = call(
            &target,
            reqwest::Method::POST,
            &path,
            Some(json!({ "sample": args.sample })),
        )?;
        if args.remote.json {
            print_json(&v);
        } else {
            println!(
                "test message queued for {}: delivery {} (sample {}); follow it with `gitee-relay deliveries show {}`",
                text(&v["channel"]),
                text(&v["delivery_id"]),
                text(&v["sample"]),
                text(&v["delivery_id"])
            );
        }
        Ok(())
    })())
}

//! The ceilings, built with the relay's own HTTP stack (actix-web 4, 2 workers, same
//! keep-alive settings), in this process:
//!
//! * `bare`: reads the whole body, answers 200 with a small JSON body;
//! * `append`: also appends the body to a file before answering, with group commit: one
//!   writer thread takes whatever requests have gathered (up to 512), writes them with one
//!   `write` and one `fdatasync`, then answers each. No waiting window: a lone request is
//!   synced at once, batches form only from concurrency (the relay's ingest design);
//! * `forward`: the synchronous relay the issue measures end-to-end delivery against —
//!   checks the Gitee token, parses the body, renders the Feishu card and signs it with the
//!   relay's own code, POSTs it with the dispatcher's own sender (keep-alive) and answers 200
//!   once the robot has accepted it. No store, no queue, no retries, no log line: what a relay
//!   costs without durability.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use gitee_relay::dispatch::sender;
use gitee_relay::gitee::EventKind;
use gitee_relay::gitee::auth::{self, SourceAuth};
use gitee_relay::message::{self, Target};
use gitee_relay::platform::{PlatformKind, Reply, SendTarget, Verdict, platform};
use gitee_relay::render::TemplateSet;
use tokio::sync::{mpsc, oneshot};

const MAX_BATCH: usize = 512;

type Append = (Bytes, oneshot::Sender<u64>);

pub struct Ceiling {
    pub addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The append ceiling's file, removed when it stops.
    scratch: Option<PathBuf>,
}

impl Ceiling {
    pub fn stop(mut self) {
        let handle = self.handle.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(handle.stop(true));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Gigabytes by now. Left in place until the benchmark's folder went, the relay's
        // ingest measured right after it came out lower than without the ceilings first
        // (two pairs of runs: 12-15 % fewer req/s at 64 connections, 10-20 % more CPU per
        // webhook); with it removed here, two pairs showed no consistent difference.
        if let Some(path) = self.scratch.take() {
            let _ = std::fs::remove_file(path);
            // And the file system's bookkeeping of the freed space written out now, not
            // during the relay's start that follows (it took 0.5-1 s then).
            let _ = std::process::Command::new("sync").status();
        }
    }
}

async fn bare(body: Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(format!("{{\"bytes\":{}}}", body.len()))
}

async fn append(body: Bytes, tx: web::Data<mpsc::Sender<Append>>) -> HttpResponse {
    let (reply_tx, reply_rx) = oneshot::channel();
    if tx.send((body, reply_tx)).await.is_err() {
        return HttpResponse::ServiceUnavailable().finish();
    }
    match reply_rx.await {
        Ok(offset) => HttpResponse::Ok()
            .content_type("application/json")
            .body(format!("{{\"offset\":{offset}}}")),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

/// Where the `forward` ceiling delivers: a Feishu robot and its signing secret.
pub struct ForwardTo {
    pub gitee_secret: String,
    pub robot_url: String,
    pub robot_secret: String,
}

struct Forward {
    to: ForwardTo,
    auth: SourceAuth,
    templates: TemplateSet,
    client: reqwest::Client,
}

/// One webhook in, one message out, answered when the robot said yes (502 when it did not).
async fn forward_one(req: HttpRequest, body: Bytes, f: web::Data<Forward>) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let now = gitee_relay::time_util::now_ms();
    let token = header("X-Gitee-Token");
    let timestamp = header("X-Gitee-Timestamp");
    if auth::verify(&f.auth, token, timestamp, now, auth::DEFAULT_MAX_SKEW_MS).is_err() {
        return HttpResponse::Unauthorized().finish();
    }
    let Some(kind) = header("X-Gitee-Event").and_then(EventKind::parse) else {
        return HttpResponse::BadRequest().finish();
    };
    let rendered = match message::render(
        &f.templates,
        kind,
        &body,
        "bench",
        false,
        now,
        &Target::nobody(),
    ) {
        Ok(v) => v,
        Err(e) => return HttpResponse::BadRequest().body(e.to_string()),
    };
    let feishu = platform(PlatformKind::Feishu);
    let target = SendTarget {
        url: &f.to.robot_url,
        secret: Some(&f.to.robot_secret),
        keyword: None,
    };
    let Ok(request) = feishu.prepare(&target, rendered, SystemTime::now()) else {
        return HttpResponse::InternalServerError().finish();
    };
    // The dispatcher's own POST: the same encoding, headers and reply reading.
    let Ok(reply) = sender::post(&f.client, &request).await else {
        return HttpResponse::BadGateway().finish();
    };
    let verdict = feishu.classify(&Reply {
        status: reply.status,
        retry_after: reply.retry_after,
        body: &reply.body,
    });
    match verdict {
        Verdict::Delivered => HttpResponse::Ok()
            .content_type("application/json")
            .body("{\"delivered\":true}"),
        _ => HttpResponse::BadGateway().body(reply.body),
    }
}

/// The group-commit writer: one batch → one write + one fdatasync → every reply.
fn writer(path: PathBuf, mut rx: mpsc::Receiver<Append>) {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .expect("open the append file");
    let mut offset = 0u64;
    let mut batch: Vec<Append> = Vec::with_capacity(MAX_BATCH);
    let mut out = Vec::with_capacity(MAX_BATCH * 8 * 1024);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        out.clear();
        for (body, _) in &batch {
            out.write_all(&(body.len() as u32).to_le_bytes())
                .expect("vec");
            out.write_all(body).expect("vec");
        }
        file.write_all_at(&out, offset).expect("append");
        file.sync_data().expect("fdatasync");
        offset += out.len() as u64;
        for (_, reply) in batch.drain(..) {
            let _ = reply.send(offset);
        }
    }
}

/// Starts a ceiling server on a fresh loopback port: `bare` or `append`.
pub fn start(kind: &str, dir: &std::path::Path) -> Ceiling {
    let append_file = (kind == "append").then(|| dir.join("ceiling-append.log"));
    serve(append_file, None)
}

/// Starts the `forward` ceiling on a fresh loopback port.
pub fn start_forward(to: ForwardTo) -> Ceiling {
    let forward = Forward {
        auth: SourceAuth::Signature {
            secret: to.gitee_secret.clone(),
        },
        to,
        templates: TemplateSet::builtin(PlatformKind::Feishu),
        // The dispatcher's client, with the timeouts the bench channel has.
        client: sender::client(Duration::from_secs(5), Duration::from_secs(15)),
    };
    serve(None, Some(web::Data::new(forward)))
}

fn serve(append_file: Option<PathBuf>, forward: Option<web::Data<Forward>>) -> Ceiling {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let scratch = append_file.clone();
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let sys = actix_web::rt::System::new();
        sys.block_on(async move {
            let sender = append_file.map(|path| {
                let (tx, rx) = mpsc::channel::<Append>(4 * MAX_BATCH);
                std::thread::spawn(move || writer(path, rx));
                web::Data::new(tx)
            });
            let server = HttpServer::new(move || {
                let app = App::new().app_data(web::PayloadConfig::new(8 * 1024 * 1024));
                match (&sender, &forward) {
                    (Some(tx), _) => app
                        .app_data(tx.clone())
                        .route("/hooks/{source}", web::post().to(append)),
                    (None, Some(f)) => app
                        .app_data(f.clone())
                        .route("/hooks/{source}", web::post().to(forward_one)),
                    (None, None) => app.route("/hooks/{source}", web::post().to(bare)),
                }
            })
            .workers(2)
            .disable_signals()
            .keep_alive(Duration::from_secs(5))
            .listen(listener)
            .expect("listen")
            .run();
            handle_tx.send(server.handle()).expect("handle");
            let _ = server.await;
        });
    });
    let handle = handle_rx.recv().expect("ceiling started");
    Ceiling {
        addr,
        handle,
        thread: Some(thread),
        scratch,
    }
}

//! Logging: human-readable lines by default, JSON for collectors. `RUST_LOG` filters.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// Installs the subscriber. Lines are formatted on the thread that logs and written by a
/// background thread, several per `write` when they come fast (one `write` per line cost
/// ~5 % of the CPU at a few thousand webhooks/s). Keep the guard until the process ends:
/// dropping it writes what is still queued. When lines come faster than stderr takes them,
/// the threads that log wait (nothing is dropped).
pub fn init(format: LogFormat) -> Option<WorkerGuard> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,actix_server=warn"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        // The queue's slots are allocated up front: the default 128,000 cost ~4 MiB of RSS.
        .buffered_lines_limit(8_192)
        .thread_name("gitee-relay-log")
        .finish(LineBatches(std::io::BufWriter::new(std::io::stderr())));
    // A log line that cannot be written (stderr's reader went away) is dropped, not a panic:
    // the relay keeps serving webhooks whatever happens to its logs.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .log_internal_errors(false);
    let installed = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.ok().map(|()| guard)
}

/// stderr behind a buffer that the log thread flushes whenever it has written every queued
/// line: batches under load, no delay when quiet. Write errors are swallowed (see above).
struct LineBatches(std::io::BufWriter<std::io::Stderr>);

impl std::io::Write for LineBatches {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.0.flush();
        Ok(())
    }
}

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
/// line: batches under load, no delay for a lone line. Write errors are swallowed (see above).
struct LineBatches<W: std::io::Write>(std::io::BufWriter<W>);

/// How long the log thread rests after each flush before it waits for lines again. Without
/// the rest it drained the queue as fast as lines came, so every line (one per webhook and
/// per delivery) woke it, and waking it cost the logging thread a futex call and the log
/// thread a context switch: ≈ 10 % of the relay's CPU while delivering. Resting, it is not
/// waiting on the queue, so lines are queued without waking anyone and written together
/// when it comes back. A lone line is still written at once; a line that follows it within
/// the rest waits at most this long.
const GATHER: std::time::Duration = std::time::Duration::from_millis(2);

impl<W: std::io::Write> std::io::Write for LineBatches<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.write_all(buf);
        Ok(buf.len())
    }

    /// Called by the log thread when the queue is empty (and once at shutdown).
    fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.0.flush();
        std::thread::sleep(GATHER);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn lines_are_held_until_the_flush_then_written_in_order() {
        let mut out = LineBatches(std::io::BufWriter::new(Vec::new()));
        out.write_all(b"{\"a\":1}\n").unwrap();
        out.write_all(b"{\"b\":2}\n").unwrap();
        assert!(out.0.get_ref().is_empty(), "written before the flush");
        out.flush().unwrap();
        assert_eq!(out.0.get_ref().as_slice(), b"{\"a\":1}\n{\"b\":2}\n");
    }

    /// A sink that refuses everything, like stderr whose reader went away.
    struct Gone;

    impl Write for Gone {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn write_errors_are_swallowed() {
        // Unbuffered, so the write itself reaches the sink and fails there.
        let mut out = LineBatches(std::io::BufWriter::with_capacity(0, Gone));
        assert_eq!(out.write(b"line\n").unwrap(), 5);
        assert!(out.flush().is_ok());
    }
}

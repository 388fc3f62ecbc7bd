//! Hot reload of template overrides.
//!
//! A [`TemplateStore`] holds the current [`TemplateSet`] of one (platform, override folder)
//! pair behind a lock; the dispatcher takes [`TemplateStore::current`] for every message, so a
//! reload changes the next message. [`TemplateStore::reload`] loads and validates a new set
//! first (every template rendered against every sample, as at start-up) and swaps it in only
//! if that succeeds: a broken edit is reported with its file, line and reason, and the previous
//! set keeps serving.
//!
//! [`Reloader::run`] reloads every store on SIGHUP and when a file changes in an override
//! folder. It watches each folder recursively and the folder's parent non-recursively (editors
//! and Kubernetes ConfigMaps replace files by renaming or by swapping a symlink, and a folder
//! itself may be replaced), and waits until changes stop for [`DEBOUNCE`] before reloading.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{TemplateError, TemplateSet};
use crate::platform::PlatformKind;

/// Quiet time after the last file change before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// The current template set of one platform and override folder, replaceable at run time.
#[derive(Debug)]
pub struct TemplateStore {
    platform: PlatformKind,
    dir: Option<PathBuf>,
    timezone: String,
    current: RwLock<Arc<TemplateSet>>,
    last_error: Mutex<Option<String>>,
    generation: AtomicU64,
}

impl TemplateStore {
    /// Loads (and validates) the set of `platform` with the overrides of `dir`.
    pub fn load(
        platform: PlatformKind,
        dir: Option<&Path>,
        timezone: &str,
    ) -> Result<TemplateStore, TemplateError> {
        let set = TemplateSet::load(platform, dir)?.with_timezone(timezone);
        Ok(TemplateStore {
            platform,
            dir: dir.map(Path::to_path_buf),
            timezone: timezone.to_owned(),
            current: RwLock::new(Arc::new(set)),
            last_error: Mutex::new(None),
            generation: AtomicU64::new(0),
        })
    }

    /// A store holding `set` (no override folder: reloading keeps it).
    pub fn fixed(set: TemplateSet) -> TemplateStore {
        TemplateStore {
            platform: set.platform(),
            dir: None,
            timezone: set.timezone().to_owned(),
            current: RwLock::new(Arc::new(set)),
            last_error: Mutex::new(None),
            generation: AtomicU64::new(0),
        }
    }

    /// The set to render the next message with.
    pub fn current(&self) -> Arc<TemplateSet> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn platform(&self) -> PlatformKind {
        self.platform
    }

    /// The override folder, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// How many times a new set was swapped in.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The error of the last reload that was rejected, until a reload succeeds.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Loads and validates the folder again; swaps the new set in only if it is valid. On
    /// error the previous set stays current and the error (file:line: reason) is returned and
    /// remembered in [`TemplateStore::last_error`]. A store without a folder does nothing.
    pub fn reload(&self) -> Result<(), TemplateError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let mut last_error = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        match TemplateSet::load(self.platform, Some(dir)) {
            Ok(set) => {
                let set = Arc::new(set.with_timezone(&self.timezone));
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = set;
                self.generation.fetch_add(1, Ordering::SeqCst);
                *last_error = None;
                Ok(())
            }
            Err(e) => {
                *last_error = Some(e.to_string());
                Err(e)
            }
        }
    }
}

/// Reloads a group of stores on SIGHUP and on file changes.
#[derive(Debug, Clone)]
pub struct Reloader {
    stores: Vec<Arc<TemplateStore>>,
}

impl Reloader {
    /// The stores to reload (the same store listed twice is reloaded once).
    pub fn new(stores: impl IntoIterator<Item = Arc<TemplateStore>>) -> Reloader {
        let mut out: Vec<Arc<TemplateStore>> = Vec::new();
        for s in stores {
            if !out.iter().any(|o| Arc::ptr_eq(o, &s)) {
                out.push(s);
            }
        }
        Reloader { stores: out }
    }

    /// The override folders watched.
    pub fn dirs(&self) -> BTreeSet<PathBuf> {
        self.stores
            .iter()
            .filter_map(|s| s.dir().map(Path::to_path_buf))
            .collect()
    }

    /// Reloads every store with a folder, logging each outcome. Returns how many were
    /// rejected.
    pub fn reload_all(&self, why: &str) -> usize {
        let mut failed = 0;
        for store in &self.stores {
            let Some(dir) = store.dir() else { continue };
            match store.reload() {
                Ok(()) => tracing::info!(
                    platform = %store.platform(),
                    dir = %dir.display(),
                    reason = why,
                    "templates reloaded"
                ),
                Err(e) => {
                    failed += 1;
                    tracing::error!(
                        platform = %store.platform(),
                        dir = %dir.display(),
                        reason = why,
                        "template reload rejected, the previous templates keep serving: {e}"
                    );
                }
            }
        }
        failed
    }

    /// Watches the folders and SIGHUP until `shutdown` turns true. Never returns earlier, even
    /// when there is nothing to watch (the dispatcher checks that its tasks are alive).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        let dirs = self.dirs();
        let mut watcher = if dirs.is_empty() {
            None
        } else {
            match watch_dirs(&dirs, tx.clone()) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch the template folders; reload with SIGHUP");
                    None
                }
            }
        };
        let mut hangup = hangup_signal();
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        return;
                    }
                }
                Some(()) = rx.recv() => {
                    // Debounce: wait until the changes stop.
                    loop {
                        tokio::select! {
                            _ = tokio::time::sleep(DEBOUNCE) => break,
                            more = rx.recv() => if more.is_none() { break },
                        }
                    }
                    self.reload_all("a template file changed");
                    // A folder replaced by a rename or a symlink swap is a new inode: watch it.
                    if let Some(w) = watcher.as_mut() {
                        rewatch(w, &dirs);
                    }
                }
                _ = next_hangup(&mut hangup) => {
                    self.reload_all("SIGHUP");
                }
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangup_signal() -> Hangup {
    None
}

/// Resolves at the next SIGHUP; never without a handler.
async fn next_hangup(hangup: &mut Hangup) {
    #[cfg(unix)]
    if let Some(s) = hangup {
        if s.recv().await.is_some() {
            return;
        }
        *hangup = None;
    }
    let _ = hangup;
    std::future::pending::<()>().await
}

/// Watches `dirs` again (after a folder was replaced, the old watch points at nothing).
fn rewatch(watcher: &mut notify::RecommendedWatcher, dirs: &BTreeSet<PathBuf>) {
    use notify::{RecursiveMode, Watcher};
    for dir in dirs {
        let _ = watcher.unwatch(dir);
        if let Err(e) = watcher.watch(dir, RecursiveMode::Recursive) {
            tracing::warn!(error = %e, dir = %dir.display(), "cannot watch the template folder");
        }
    }
}

/// True when `path` is `dir` or inside it.
fn concerns(path: &Path, dirs: &BTreeSet<PathBuf>) -> bool {
    dirs.iter().any(|d| path.starts_with(d))
}

fn watch_dirs(
    dirs: &BTreeSet<PathBuf>,
    tx: mpsc::UnboundedSender<()>,
) -> notify::Result<notify::RecommendedWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let watched = dirs.clone();
    let mut watcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            Ok(event) => {
                if matches!(event.kind, EventKind::Access(_)) {
                    return;
                }
                if event.paths.iter().any(|p| concerns(p, &watched)) {
                    let _ = tx.send(());
                }
            }
            Err(e) => tracing::warn!(error = %e, "template folder watch error"),
        })?;
    for dir in dirs {
        watcher.watch(dir, RecursiveMode::Recursive)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            // The folder itself may be replaced (renamed, symlink swapped).
            if let Err(e) = watcher.watch(parent, RecursiveMode::NonRecursive) {
                tracing::debug!(error = %e, dir = %parent.display(), "cannot watch the parent folder");
            }
        }
    }
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::sample;

    const GOOD: &str = r#"{"text": "v1 {{summary}}"}"#;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn text_of(store: &TemplateStore) -> String {
        let body = store.current().render(&sample::push("push", 1, 1)).unwrap();
        body["text"].as_str().unwrap().to_owned()
    }

    #[test]
    fn a_valid_edit_swaps_a_broken_one_is_rejected_with_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "slack/push.hbs", GOOD);
        let store = TemplateStore::load(PlatformKind::Slack, Some(tmp.path()), "UTC").unwrap();
        assert!(text_of(&store).starts_with("v1 "));

        write(
            tmp.path(),
            "slack/push.hbs",
            r#"{"text": "v2 {{summary}}"}"#,
        );
        store.reload().unwrap();
        assert!(text_of(&store).starts_with("v2 "));
        assert_eq!(store.generation(), 1);
        assert_eq!(store.current().timezone(), "UTC");

        // Line 2 has an unclosed block.
        write(
            tmp.path(),
            "slack/push.hbs",
            "{\"text\":\n \"{{#if summary}}v3\"}",
        );
        let err = store.reload().unwrap_err().to_string();
        let path = tmp.path().join("slack/push.hbs");
        assert!(err.contains(&format!("{}:", path.display())), "{err}");
        assert!(
            text_of(&store).starts_with("v2 "),
            "the old set keeps serving"
        );
        assert_eq!(store.generation(), 1);
        assert_eq!(store.last_error(), Some(err));

        // A misspelt field: reported with file:line:column and the field.
        write(tmp.path(), "slack/push.hbs", "{\n\"text\": \"{{summry}}\"}");
        let err = store.reload().unwrap_err().to_string();
        assert!(err.contains(&format!("{}:2:", path.display())), "{err}");
        assert!(err.contains("summry"), "{err}");
        assert!(text_of(&store).starts_with("v2 "));
    }

    #[tokio::test]
    async fn file_changes_are_picked_up_after_the_debounce() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "slack/push.hbs", GOOD);
        let store =
            Arc::new(TemplateStore::load(PlatformKind::Slack, Some(tmp.path()), "+08:00").unwrap());
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(Reloader::new([store.clone(), store.clone()]).run(stop_rx));
        // Let the watcher start.
        tokio::time::sleep(Duration::from_millis(200)).await;
        write(
            tmp.path(),
            "slack/push.hbs",
            r#"{"text": "v2 {{summary}}"}"#,
        );
        let mut swapped = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if text_of(&store).starts_with("v2 ") {
                swapped = true;
                break;
            }
        }
        assert!(swapped, "the edit was not picked up");

        // The whole folder replaced by a rename (how ConfigMaps and deploy tools swap it).
        let next = tmp.path().with_extension("next");
        write(&next, "slack/push.hbs", r#"{"text": "v3 {{summary}}"}"#);
        std::fs::rename(tmp.path(), tmp.path().with_extension("old")).unwrap();
        std::fs::rename(&next, tmp.path()).unwrap();
        assert!(
            wait_for(&store, "v3 ").await,
            "the replaced folder was not picked up"
        );
        // And edits in the new folder are still seen.
        write(
            tmp.path(),
            "slack/push.hbs",
            r#"{"text": "v4 {{summary}}"}"#,
        );
        assert!(
            wait_for(&store, "v4 ").await,
            "an edit in the new folder was not picked up"
        );
        let _ = std::fs::remove_dir_all(tmp.path().with_extension("old"));
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    async fn wait_for(store: &TemplateStore, prefix: &str) -> bool {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if text_of(store).starts_with(prefix) {
                return true;
            }
        }
        false
    }
}

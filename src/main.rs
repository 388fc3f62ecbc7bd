// mimalloc rather than glibc's malloc: rendering and parsing make many short-lived small
// allocations, which it serves markedly faster (see BENCHMARKS.md), and it returns freed memory
// to the system instead of keeping per-thread arenas.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `arena_eager_commit` (option 4 in both its v2 and v3 option lists; the crate
/// names only some options).
#[cfg(target_os = "linux")]
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Runs before `main` and before the Rust runtime's first allocation (an ELF constructor):
/// mimalloc reserves its first arena on the first allocation, so the option must be set first.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static CONFIGURE_ALLOCATOR: extern "C" fn() = configure_allocator;

#[cfg(target_os = "linux")]
extern "C" fn configure_allocator() {
    // On Linux (overcommit on) mimalloc commits each 1 GiB arena eagerly by default, which
    // shows as ~15 MiB more resident memory at idle; committing on demand costs nothing
    // measurable here. Only the default changes: `MIMALLOC_ARENA_EAGER_COMMIT` still wins.
    // SAFETY: sets a plain integer default, before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set_default(MI_OPTION_ARENA_EAGER_COMMIT, 0) };
}

fn main() -> std::process::ExitCode {
    gitee_relay::cli::main()
}

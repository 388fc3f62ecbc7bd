// mimalloc rather than glibc's malloc: rendering and parsing make many short-lived small
// allocations, which it serves markedly faster (see BENCHMARKS.md), and it returns freed memory
// to the system instead of keeping per-thread arenas.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    gitee_relay::cli::main()
}

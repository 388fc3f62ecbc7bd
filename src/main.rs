fn main() -> std::process::ExitCode {
    gitee_relay::cli::main()
}

use clap::Parser;

fn main() {
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("hark=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(!journald && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = hark::cli::Cli::parse();
    match hark::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("hark: error: {e:#}");
            std::process::exit(2);
        }
    }
}

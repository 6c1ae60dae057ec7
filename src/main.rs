use clap::Parser;

fn main() {
    // Tensors are allocated and freed constantly; glibc would return each large buffer to the
    // kernel (mmap/munmap and page faults on every op). Keep them in the heap instead.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
    let cli = hark::cli::Cli::parse();
    // candle asks how many threads to use on every matmul and convolution; unless
    // RAYON_NUM_THREADS is set, the answer comes from num_cpus, which reads the cgroup files in
    // /proc and /sys each time — measured, that was 45% of a TTS sentence and 10% of a Whisper
    // eval. Answer once, with each of the files decoded at once getting its share of the cores
    // (two files on two cores with two threads each: 30% slower over librispeech/dev than one
    // thread each). Before any thread exists, so setting the variable is sound.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = (cores / cli.parallel_files()).max(1);
        unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    }
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("hark=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(!journald && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match hark::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("hark: error: {e:#}");
            std::process::exit(2);
        }
    }
}

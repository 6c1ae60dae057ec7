//! `hark serve` (placeholder while the service is written).
pub fn serve(_config: Option<std::path::PathBuf>, _listen: Option<String>) -> anyhow::Result<i32> {
    anyhow::bail!("not yet")
}

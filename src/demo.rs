//! demo (coming)
pub async fn run(_out: &mut impl std::io::Write) -> anyhow::Result<()> {
    Ok(())
}

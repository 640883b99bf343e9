//! One `warroom serve` per SQLite file: the real binary, twice on one database.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::helpers::{BASE_CONFIG, PATIENCE};

fn serve(dir: &std::path::Path, db: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warroom"));
    cmd.arg("--config")
        .arg(dir.join("warroom.toml"))
        .arg("serve")
        .env("DATABASE_URL", db)
        .env("WARROOM_BIND", "127.0.0.1:0")
        .env("SLACK_SIGNING_SECRET", "secret")
        .env("SLACK_BOT_TOKEN", "xoxb-test")
        .env("SLACK_API_URL", "http://127.0.0.1:9/api/")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Reads the server's log until it listens (true) or exits or the patience runs out (false).
async fn listens(child: &mut tokio::process::Child) -> bool {
    let Some(stderr) = child.stderr.take() else {
        return false;
    };
    let mut lines = BufReader::new(stderr).lines();
    let seen = tokio::time::timeout(PATIENCE, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("warroom listening") {
                return true;
            }
        }
        false
    });
    seen.await.unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_sqlite_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("warroom.toml"), BASE_CONFIG).unwrap();
    let path = dir.path().join("warroom.db");
    let db = format!("sqlite://{}", path.display());

    let mut first = serve(dir.path(), &db).spawn().expect("first server starts");
    assert!(listens(&mut first).await, "the first server never listened");

    let second = tokio::time::timeout(PATIENCE, serve(dir.path(), &db).output())
        .await
        .expect("the second server exits at once")
        .expect("second server ran");
    let message = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{message}");
    assert!(
        message.contains(&path.display().to_string()) && message.contains("PostgreSQL"),
        "{message}"
    );
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first server still runs"
    );

    // The lock dies with its process: after a kill -9 the next server starts.
    first.kill().await.unwrap();
    let mut third = serve(dir.path(), &db).spawn().expect("third server starts");
    assert!(listens(&mut third).await, "a server after a kill starts");
    third.kill().await.unwrap();
}

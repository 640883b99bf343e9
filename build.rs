//! Marks whether the PostgreSQL integration suite can run: with `WARROOM_TEST_POSTGRES_URL` set
//! at build time, `cfg(warroom_pg)` is on and the suite's tests are no longer `#[ignore]`d.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(warroom_pg)");
    println!("cargo::rerun-if-env-changed=WARROOM_TEST_POSTGRES_URL");
    if std::env::var("WARROOM_TEST_POSTGRES_URL").is_ok_and(|v| !v.trim().is_empty()) {
        println!("cargo::rustc-cfg=warroom_pg");
    }
}

//! What the PostgreSQL tests of the binary share: the database URL scripts/test provides, `psql`, and
//! the check that CI never skips them.

#![allow(dead_code)]

use std::process::Command;

/// `SLUICE_TEST_POSTGRES_URL`: scripts/test sets it to the machine's PostgreSQL or a throwaway one.
pub fn postgres_url() -> String {
    std::env::var("SLUICE_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .expect(
            "SLUICE_TEST_POSTGRES_URL is not set: point it at a PostgreSQL database \
             (e.g. postgres://postgres@127.0.0.1:5432/test), or run scripts/test",
        )
}

/// Runs one statement with `psql`; its unaligned output. Fails the test when psql does.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-AtXqc", sql])
        .output()
        .expect("psql is installed with PostgreSQL");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs one statement, for clean-up: a failure is reported, not raised (it runs in `Drop`).
pub fn psql_quietly(url: &str, sql: &str) {
    let out = Command::new("psql").args([url, "-AtXqc", sql]).output();
    if !out.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("psql {sql}: {out:?}");
    }
}

/// Under CI the PostgreSQL tests must run, not be skipped: scripts/test sets the URL or fails.
#[test]
fn under_ci_postgres_is_configured() {
    if std::env::var_os("CI").is_some() {
        assert!(
            std::env::var("SLUICE_TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty()),
            "CI is set but SLUICE_TEST_POSTGRES_URL is not: the PostgreSQL tests would be skipped"
        );
    }
}

//! Starts `sluice up` (or `sluice gateway`) on 127.0.0.1 and a free port, for the API and browser
//! tests; stops it (SIGTERM, then a kill) when dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub struct Server {
    pub base: String,
    pub data: PathBuf,
    child: Child,
    /// Everything the process wrote to stderr so far.
    pub stderr: Arc<Mutex<String>>,
    pub stdout: Arc<Mutex<String>>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// `sluice up` with `config` (the repository's spec when None) in a fresh data directory.
    pub fn up(config: Option<&str>, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let spec = match config {
            Some(text) => {
                let p = dir.path().join("spec.toml");
                std::fs::write(&p, text).unwrap();
                p
            }
            None => repo().join("sluice.toml"),
        };
        let data = dir.path().join("data");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.args(["up", "--json", "--port", "0"])
            .args(extra)
            .arg("--config")
            .arg(&spec)
            .arg("--data-dir")
            .arg(&data)
            .env("SLUICE_LOG", "warn")
            .envs(env.iter().copied());
        Server::start(cmd, data, Some(dir))
    }

    pub fn start(mut cmd: Command, data: PathBuf, dir: Option<tempfile::TempDir>) -> Server {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let pipe = child.stderr.take().unwrap();
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Some(at) = line.find("serving http://") {
                        let rest = &line[at + "serving ".len()..];
                        let url = rest.split_whitespace().next().unwrap_or_default();
                        let _ = tx.send(url.trim_end_matches('/').to_string());
                    }
                    let mut all = stderr.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            });
        }
        {
            let pipe = child.stdout.take().unwrap();
            let stdout = stdout.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut all = stdout.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            });
        }
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server did not start; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        Server {
            base,
            data,
            child,
            stderr,
            stdout,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGTERM and wait: the exit status and what it wrote to stderr.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        let status = self.terminate();
        std::thread::sleep(Duration::from_millis(100));
        let err = self.stderr.lock().unwrap().clone();
        (status, err)
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..300 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

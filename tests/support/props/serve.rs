//! A `jitgate serve` process for the property suite. Unlike
//! [`jitgate_tests::server::Server`], starting it is a checked result, not a
//! panic: a server that exits at start-up (a restart over a poisoned store)
//! is an invariant failure to report with its output, found at once rather
//! than after a 60 s wait.

use jitgate_tests::http::{self, Response};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running server.
pub struct Serve {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    output: Arc<Mutex<Vec<String>>>,
}

fn collect(output: &Arc<Mutex<Vec<String>>>, line: String) {
    if let Ok(mut o) = output.lock() {
        // Bounded: a long run must not keep every log line.
        if o.len() >= 400 {
            o.drain(..200);
        }
        o.push(line);
    }
}

impl Serve {
    /// Start with `config`, wait until `/readyz` answers 200.
    pub fn start(config: &Path) -> Result<Serve, String> {
        let mut child = Command::new(jitgate_tests::jitgate_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .env("JITGATE_LOG", "warn")
            .env("NO_COLOR", "1")
            .env("JITGATE_WEBHOOK_SECRET", "test-secret-0123456789")
            .env(
                jitgate_tests::tickets::SECRET_ENV,
                jitgate_tests::tickets::SECRET,
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn jitgate serve: {e}"))?;
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some(out) = child.stdout.take() {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        let _ = tx.send(Some(
                            rest.split_whitespace().next().unwrap_or("").to_string(),
                        ));
                    }
                    collect(&output, line);
                }
                // stdout closed: the process is gone.
                let _ = tx.send(None);
            });
        }
        if let Some(err) = child.stderr.take() {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    collect(&output, line);
                }
            });
        }
        let mut serve = Serve {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            output,
        };
        match rx.recv_timeout(Duration::from_secs(90)) {
            Ok(Some(a)) => {
                serve.addr = a
                    .parse()
                    .map_err(|e| format!("listening address `{a}`: {e}"))?
            }
            Ok(None) | Err(_) => {
                let status = serve.child.try_wait().ok().flatten();
                // Give stderr's reader a moment to catch the last lines.
                std::thread::sleep(Duration::from_millis(200));
                return Err(format!(
                    "server did not start (exit: {status:?}); its output:\n{}",
                    serve.tail(30)
                ));
            }
        }
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = serve.child.try_wait() {
                return Err(format!(
                    "server exited before ready ({status}); its output:\n{}",
                    serve.tail(30)
                ));
            }
            if let Ok(r) = serve.get("/readyz", None)
                && r.status == 200
            {
                return Ok(serve);
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(format!(
                    "server not ready after 60 s; its output:\n{}",
                    serve.tail(30)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last `n` lines it printed.
    pub fn tail(&self, n: usize) -> String {
        self.output
            .lock()
            .map(|o| o[o.len().saturating_sub(n)..].join("\n"))
            .unwrap_or_default()
    }

    /// One HTTP call; a refused or dropped connection is an error, not a
    /// panic.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<Response, String> {
        let addr = self.addr;
        let token = token.map(str::to_string);
        let body = body.map(<[u8]>::to_vec);
        let (m, p) = (method.to_string(), path.to_string());
        std::panic::catch_unwind(move || {
            http::send(addr, &m, &p, token.as_deref(), body.as_deref())
        })
        .map_err(|_| format!("{method} {path}: connection failed"))
    }

    /// GET.
    pub fn get(&self, path: &str, token: Option<&str>) -> Result<Response, String> {
        self.send("GET", path, token, None)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

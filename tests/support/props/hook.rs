//! A webhook target for the property suite that refuses the first delivery
//! of every `grant-activated` event (then accepts it) and accepts every
//! other event at once, recording the order it accepted them in. Against
//! it, a grant ended while its activation waits for a retry shows whether
//! provisioning order survives retries.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The target.
pub struct Hook {
    /// Where it listens.
    pub addr: SocketAddr,
    accepted: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Hook {
    /// Listen on a free port.
    pub fn start() -> Result<Hook, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let list = accepted.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            let mut refused: HashSet<String> = HashSet::new();
            for stream in listener.incoming().map_while(Result::ok) {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(read) = stream.try_clone() else {
                    continue;
                };
                let mut reader = BufReader::new(read);
                let (mut id, mut len) = (String::new(), 0usize);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("x-jitgate-event-id") {
                            id = v.trim().to_string();
                        } else if k.eq_ignore_ascii_case("content-length") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                let mut stream = stream;
                if id.ends_with(":grant-activated") && refused.insert(id.clone()) {
                    let _ = stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    continue;
                }
                if let Ok(mut l) = list.lock() {
                    l.push(id);
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Ok(Hook {
            addr,
            accepted,
            stop,
        })
    }

    /// The `[provisioner]` section that points a server here.
    pub fn config(&self) -> String {
        format!(
            "[provisioner]\nkind = \"webhook\"\nurl = \"http://{}/hook\"\nsecret-env = \"JITGATE_WEBHOOK_SECRET\"\n",
            self.addr
        )
    }

    /// Event ids accepted so far, in order.
    pub fn accepted(&self) -> Vec<String> {
        self.accepted.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The first grant whose `grant-ended` was accepted before its
    /// `grant-activated` (or without it), if any.
    pub fn out_of_order(&self) -> Option<String> {
        let mut activated = HashSet::new();
        for id in self.accepted() {
            if let Some(g) = id.strip_suffix(":grant-activated") {
                activated.insert(g.to_string());
            } else if let Some(g) = id.strip_suffix(":grant-ended")
                && !activated.contains(g)
            {
                return Some(g.to_string());
            }
        }
        None
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        // Shrinking starts hundreds of these: end the thread and free the
        // port (a connection wakes the blocked accept).
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

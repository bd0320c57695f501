//! A TCP forwarder a test can cut: "the target is down" for a server the
//! test cannot stop (the machine's PostgreSQL) or should not restart.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Forwards connections on `addr` to an upstream while up; while down it
/// closes new connections at once and has cut the open ones.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    /// Connections forwarded before new ones are held open unanswered.
    budget: Arc<AtomicUsize>,
}

impl Proxy {
    /// Forward to `upstream`, up.
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let up = Arc::new(AtomicBool::new(true));
        let open = Arc::new(Mutex::new(Vec::new()));
        let budget = Arc::new(AtomicUsize::new(usize::MAX));
        let (up2, open2, budget2) = (up.clone(), open.clone(), budget.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let left = budget2.load(Ordering::SeqCst);
                if left == 0 {
                    // Stalled: the client waits for an answer that never comes.
                    if let Ok(mut o) = open2.lock() {
                        o.push(client);
                    }
                    continue;
                }
                budget2.store(left.saturating_sub(1), Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                if let Ok(mut o) = open2.lock() {
                    o.extend(client.try_clone().ok());
                    o.extend(server.try_clone().ok());
                }
                for (mut from, mut to) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ]
                .into_iter()
                .filter_map(|(a, b)| Some((a.ok()?, b.ok()?)))
                {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy {
            addr,
            up,
            open,
            budget,
        }
    }

    /// Forward the next `n` connections, then hold every later one open
    /// without an answer (a target that stalls mid-operation).
    pub fn stall_after(&self, n: usize) {
        self.budget.store(n, Ordering::SeqCst);
    }

    /// Cut every open connection and refuse new ones.
    pub fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        if let Ok(mut o) = self.open.lock() {
            for s in o.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    /// Forward again (every connection).
    pub fn up(&self) {
        self.budget.store(usize::MAX, Ordering::SeqCst);
        self.up.store(true, Ordering::SeqCst);
    }
}

//! A scripted webhook receiver: a test decides, delivery by delivery, whether
//! it is accepted, refused, or answered and then stalled. Each connection has
//! its own thread, so a stalled answer holds up nothing else.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the receiver does with one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 200, empty body.
    Accept,
    /// 503.
    Refuse,
    /// 200 with a `Content-Length` it never sends: the body stalls until
    /// the connection is dropped (or a minute passes).
    AcceptThenStall,
}

/// One delivery as it arrived.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// `X-Jitgate-Event-Id`.
    pub event_id: String,
    /// `X-Jitgate-Sequence`.
    pub sequence: String,
    /// The body, as JSON.
    pub body: serde_json::Value,
    /// What the receiver answered.
    pub answer: Answer,
}

/// The script: sees each delivery and the ones before it (in arrival order).
pub type Script = dyn Fn(&Arrival, &[Arrival]) -> Answer + Send + Sync;

/// A receiver on a free loopback port.
pub struct ScriptedReceiver {
    /// Its address.
    pub addr: SocketAddr,
    /// Every delivery, in arrival order.
    pub arrivals: Arc<Mutex<Vec<Arrival>>>,
}

impl ScriptedReceiver {
    /// Start answering by `script`.
    pub fn start(script: impl Fn(&Arrival, &[Arrival]) -> Answer + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let list = arrivals.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (list, script) = (list.clone(), script.clone());
                std::thread::spawn(move || serve(stream, &list, &*script));
            }
        });
        ScriptedReceiver { addr, arrivals }
    }

    /// Deliveries so far.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Deliveries accepted so far (answered 200), in arrival order.
    pub fn accepted(&self) -> Vec<Arrival> {
        self.arrivals()
            .into_iter()
            .filter(|a| a.answer != Answer::Refuse)
            .collect()
    }
}

/// One HTTP/1.1 request as a test webhook target reads it.
pub(crate) struct RawRequest {
    headers: Vec<String>,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
}

impl RawRequest {
    /// The request line (`GET /path HTTP/1.1`).
    pub fn request_line(&self) -> &str {
        self.headers.first().map(String::as_str).unwrap_or("")
    }

    /// The value of header `name` (case-insensitive), or empty.
    pub fn header(&self, name: &str) -> String {
        self.headers
            .iter()
            .find_map(|h| {
                let (k, v) = h.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    }
}

/// Read one request's head and body; `None` when the connection ends first.
pub(crate) fn read_request(reader: &mut impl BufRead) -> Option<RawRequest> {
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        headers.push(line.trim_end().to_string());
    }
    let mut req = RawRequest {
        headers,
        body: Vec::new(),
    };
    let len: usize = req.header("content-length").parse().unwrap_or(0);
    req.body = vec![0u8; len];
    reader.read_exact(&mut req.body).ok()?;
    Some(req)
}

fn serve(stream: std::net::TcpStream, list: &Mutex<Vec<Arrival>>, script: &Script) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut stream = stream;
    // Keep-alive: answer requests on this connection until it closes.
    loop {
        let Some(req) = read_request(&mut reader) else {
            return;
        };
        let header = |name: &str| req.header(name);
        let body = &req.body;
        let mut arrival = Arrival {
            event_id: header("x-jitgate-event-id"),
            sequence: header("x-jitgate-sequence"),
            body: serde_json::from_slice(body).unwrap_or(serde_json::Value::Null),
            answer: Answer::Accept,
        };
        let answer = match list.lock() {
            Ok(mut l) => {
                arrival.answer = script(&arrival, &l);
                l.push(arrival);
                arrival_answer(&l)
            }
            Err(_) => return,
        };
        let reply: &[u8] = match answer {
            Answer::Accept => b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            Answer::Refuse => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
            Answer::AcceptThenStall => {
                b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nstalling"
            }
        };
        if stream.write_all(reply).is_err() {
            return;
        }
        if answer == Answer::AcceptThenStall {
            // Hold the connection open without finishing the body, until
            // the sender gives up and closes it.
            let mut sink = [0u8; 64];
            let _ = reader.read(&mut sink);
            return;
        }
    }
}

fn arrival_answer(l: &[Arrival]) -> Answer {
    l.last().map(|a| a.answer).unwrap_or(Answer::Accept)
}

//! Floods and slow clients against the real server: slowloris connections
//! are cut and cannot hold more than `http.max-connections`; slow bodies get
//! 408; failed authentications are rate-limited per address and audited as
//! one record per address per window; invalid bodies are audited by digest,
//! size and a short excerpt.

use jitgate_tests::http::{get, post, send};
use jitgate_tests::server::{Backend, Server, body, start, wait_for};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Open a connection and send a request head one byte every 200 ms, for up
/// to `for_at_most`. Returns how long the server let it live (None if it
/// never cut it).
fn dribble(
    addr: SocketAddr,
    for_at_most: Duration,
    connected: mpsc::Sender<()>,
) -> Option<Duration> {
    let mut s = TcpStream::connect(addr).expect("connect");
    let _ = connected.send(());
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nX-Pad: {}",
        "a".repeat(10_000)
    );
    let start = Instant::now();
    for b in head.bytes() {
        if start.elapsed() > for_at_most {
            return None;
        }
        if s.write_all(&[b]).is_err() {
            return Some(start.elapsed());
        }
        let mut buf = [0u8; 256];
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => return Some(start.elapsed()), // an error answer, then close
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

/// Issue 9 item 7: four slowloris clients take every connection slot
/// (`max-connections = 4`) and dribble their headers. They are cut at the
/// header-read timeout although they keep sending, and a normal request
/// waits for a slot (it is not served while they hold all four) and is
/// served once they are cut.
#[test]
fn slowloris_clients_are_cut_and_max_connections_holds_until_slots_free() {
    let (_g, s) = start(
        Backend::Sqlite,
        "[http]\nheader-read-timeout-ms = 3000\nmax-connections = 4\n",
    );
    let addr = s.addr;
    let (tx, rx) = mpsc::channel();
    let (up, connected) = mpsc::channel();
    for _ in 0..4 {
        let (tx, up) = (tx.clone(), up.clone());
        std::thread::spawn(move || {
            let _ = tx.send(dribble(addr, Duration::from_secs(60), up));
        });
    }
    for _ in 0..4 {
        connected
            .recv_timeout(Duration::from_secs(30))
            .expect("dribbler connected");
    }
    // Let the server accept the four before the normal client connects.
    std::thread::sleep(Duration::from_millis(300));
    let normal = std::thread::spawn(move || {
        let t = Instant::now();
        let r = get(addr, "/healthz", None);
        (r.status, t.elapsed())
    });
    let mut lived = Vec::new();
    for _ in 0..4 {
        let l = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("dribbler finished");
        lived.push(l.unwrap_or_else(|| panic!("a slowloris connection was never cut")));
    }
    // Cut by the 3 s header timeout although they never stopped sending
    // (generous upper bound: the machine is shared).
    for l in &lived {
        assert!(*l < Duration::from_secs(30), "cut late: {lived:?}");
    }
    let (status, waited) = normal.join().expect("normal request");
    assert_eq!(status, 200, "served once slots freed");
    // It could not be served while all four slots were held (the timeout
    // is 3 s, so ≥ 1.5 s is a safe lower bound on a slow machine too).
    assert!(
        waited >= Duration::from_millis(1500),
        "served while every slot was held: {waited:?}"
    );
}

/// A client that sends its headers and then a body that never finishes is
/// answered 408 at the body-read deadline; the server keeps serving.
#[test]
fn slow_body_is_answered_408_at_the_body_deadline() {
    let (_g, s) = start(Backend::Sqlite, "[http]\nbody-read-timeout-ms = 1000\n");
    let mut c = TcpStream::connect(s.addr).expect("connect");
    let _ = c.set_read_timeout(Some(Duration::from_secs(30)));
    let head = "POST /v1/decisions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t-pipe\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"id\":";
    c.write_all(head.as_bytes()).expect("write");
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body-timeout"), "{text}");
    assert_eq!(get(s.addr, "/healthz", None).status, 200);
}

fn auth_failure_records(s: &Server) -> Vec<Value> {
    let audit = get(s.addr, "/v1/audit?limit=1000", Some("t-audit")).json();
    audit["records"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter(|r| r["kind"] == "auth-failure")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Issue 9 item 4: a flood of requests with no or unknown tokens from one
/// address. After the burst they get 429 with `Retry-After`; a valid token
/// from the same address is still served; the audit log gains one record per
/// address per window with the count, not one record per request.
fn auth_failure_flood_is_rate_limited_and_audited_as_counts_per_address(b: Backend) {
    let (_g, s) = start(
        b,
        "[limits]\nauth-failure-burst = 5\nauth-failure-per-minute = 6\nauth-failure-window-secs = 2\n",
    );
    let before = get(s.addr, "/v1/audit?limit=1000", Some("t-audit")).json()["records"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    let mut statuses = Vec::new();
    let mut retry_after = Vec::new();
    for i in 0..300 {
        let token = if i % 2 == 0 { None } else { Some("wrong") };
        let mut c = TcpStream::connect(s.addr).expect("connect");
        let _ = c.set_read_timeout(Some(Duration::from_secs(30)));
        let mut head = "GET /v1/grants HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".to_string();
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        c.write_all(head.as_bytes()).expect("write");
        let mut raw = String::new();
        let _ = c.read_to_string(&mut raw);
        let status: u16 = raw
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        statuses.push(status);
        if status == 429 {
            let ra = raw.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("retry-after:")
                    .map(|v| v.trim().to_string())
            });
            retry_after.push(ra);
        }
    }
    assert!(statuses[..5].iter().all(|s| *s == 401), "{statuses:?}");
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!(limited >= 280, "rate-limited after the burst: {statuses:?}");
    assert!(
        retry_after.iter().all(|r| r
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|v| v >= 1)),
        "429 carries Retry-After: {retry_after:?}"
    );
    // Valid tokens from the same address are not locked out.
    assert_eq!(get(s.addr, "/v1/grants", Some("t-admin")).status, 200);
    // The window's records: counts, not one record per request.
    let records = wait_for(Duration::from_secs(15), || {
        let rs = auth_failure_records(&s);
        let total: u64 = rs
            .iter()
            .map(|r| r["data"]["count"].as_u64().unwrap_or(0))
            .sum();
        (total >= 300).then_some(rs)
    })
    .expect("the flood was audited");
    let total: u64 = records
        .iter()
        .map(|r| r["data"]["count"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(total, 300);
    assert!(
        records.len() <= 20,
        "one record per address per window, got {}",
        records.len()
    );
    for r in &records {
        assert_eq!(r["data"]["address"], "127.0.0.1", "{r}");
    }
    let limited_audited: u64 = records
        .iter()
        .map(|r| r["data"]["rate-limited"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(limited_audited as usize, limited);
    let after = get(s.addr, "/v1/audit?limit=1000", Some("t-audit")).json()["records"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert!(after - before <= 20, "{before} → {after} records");
    let v = get(s.addr, "/v1/audit/verify", Some("t-audit")).json();
    assert_eq!(v["ok"], true, "{v}");
}

/// Issue 9 item 4: authenticated invalid bodies. A 60 KiB invalid request
/// is audited by its sha256, size and a 256-byte escaped excerpt, not
/// stored whole; the float that broke verify is not stored as a number.
fn invalid_body_flood_is_audited_by_digest_size_and_excerpt(b: Backend) {
    let (_g, s) = start(b, "");
    let mut big = body("inv-1", "alice", "file-recovery", 60);
    big["junk"] = json!("\u{1b}]0;x\u{7}".repeat(3_500));
    let raw = big.to_string();
    assert!(raw.len() > 50_000);
    let r = send(
        s.addr,
        "POST",
        "/v1/requests",
        Some("t-pipe"),
        Some(raw.as_bytes()),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let float = json!({"id": "x", "junk": 0.953_097_925_525_095_3});
    assert_eq!(
        post(s.addr, "/v1/requests", Some("t-pipe"), &float).status,
        422
    );
    let audit = get(s.addr, "/v1/audit?limit=1000", Some("t-audit")).json();
    let invalid: Vec<&Value> = audit["records"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter(|r| r["kind"] == "request" && r["data"]["invalid"].is_object())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(invalid.len(), 2, "{audit}");
    let big_rec = &invalid[0]["data"]["body"];
    assert!(big_rec["bytes"].as_u64().unwrap_or(0) > 50_000, "{big_rec}");
    assert_eq!(big_rec["sha256"].as_str().map(str::len), Some(64));
    let excerpt = big_rec["excerpt"].as_str().unwrap_or_default();
    assert!(excerpt.len() <= 256 * 10 && excerpt.is_ascii(), "{excerpt}");
    assert!(!excerpt.contains('\u{1b}'));
    assert!(
        invalid[0]["data"].to_string().len() < 4096,
        "stored whole: {} bytes",
        invalid[0]["data"].to_string().len()
    );
    let v = get(s.addr, "/v1/audit/verify", Some("t-audit")).json();
    assert_eq!(v["ok"], true, "{v}");
}

both_stores!(
    auth_failure_flood_is_rate_limited_and_audited_as_counts_per_address,
    invalid_body_flood_is_audited_by_digest_size_and_excerpt,
);

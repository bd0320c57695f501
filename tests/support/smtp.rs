//! A minimal SMTP sink on loopback: accepts every message (no TLS, no
//! auth) and keeps it, so e-mail notifications can be checked end to end
//! without a mail server. It can also be told to refuse (a relay that is
//! down answers 421 to the greeting).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One message as received.
#[derive(Debug, Clone)]
pub struct Mail {
    /// `MAIL FROM` address.
    pub from: String,
    /// `RCPT TO` addresses.
    pub to: Vec<String>,
    /// The message (headers and body), dot-unstuffed, CRLF line ends.
    pub data: String,
}

impl Mail {
    /// The header block's lines (unfolded lines as sent).
    pub fn header_lines(&self) -> Vec<&str> {
        self.data
            .split("\r\n\r\n")
            .next()
            .unwrap_or("")
            .split("\r\n")
            .collect()
    }

    /// The body after the header block, quoted-printable decoded (soft
    /// line breaks joined, `=XX` escapes of ASCII turned back).
    pub fn body(&self) -> String {
        let raw = self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let joined = raw.replace("=\r\n", "");
        let mut out = String::with_capacity(joined.len());
        let mut rest = joined.as_str();
        while let Some(i) = rest.find('=') {
            out.push_str(&rest[..i]);
            let code = rest
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match code {
                Some(b) if b.is_ascii() => {
                    out.push(b as char);
                    rest = &rest[i + 3..];
                }
                _ => {
                    out.push('=');
                    rest = &rest[i + 1..];
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// A sink on a free loopback port.
pub struct SmtpSink {
    /// Its address.
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
    down: Arc<AtomicBool>,
}

impl SmtpSink {
    /// Start accepting.
    pub fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind smtp sink");
        let addr = listener.local_addr().expect("addr");
        let mails = Arc::new(Mutex::new(Vec::new()));
        let down = Arc::new(AtomicBool::new(false));
        let (list, flag) = (mails.clone(), down.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (list, flag) = (list.clone(), flag.clone());
                std::thread::spawn(move || {
                    let _ = session(stream, &list, &flag);
                });
            }
        });
        SmtpSink { addr, mails, down }
    }

    /// While down, every connection is refused with 421.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// The messages so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

fn session(stream: TcpStream, mails: &Mutex<Vec<Mail>>, down: &AtomicBool) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    let mut lines = BufReader::new(stream);
    if down.load(Ordering::SeqCst) {
        out.write_all(b"421 sink down\r\n")?;
        return Ok(());
    }
    out.write_all(b"220 sink ESMTP\r\n")?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            out.write_all(b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")?;
        } else if upper.starts_with("HELO") {
            out.write_all(b"250 sink\r\n")?;
        } else if upper.starts_with("MAIL FROM:") {
            from = addr_of(&cmd);
            to.clear();
            out.write_all(b"250 ok\r\n")?;
        } else if upper.starts_with("RCPT TO:") {
            to.push(addr_of(&cmd));
            out.write_all(b"250 ok\r\n")?;
        } else if upper == "DATA" {
            out.write_all(b"354 go ahead\r\n")?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                let l = line.strip_prefix('.').unwrap_or(&line);
                data.push_str(l);
            }
            if let Ok(mut m) = mails.lock() {
                m.push(Mail {
                    from: from.clone(),
                    to: to.clone(),
                    data,
                });
            }
            out.write_all(b"250 queued\r\n")?;
        } else if upper == "QUIT" {
            out.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            out.write_all(b"250 ok\r\n")?;
        } else {
            out.write_all(b"502 not implemented\r\n")?;
        }
    }
}

fn addr_of(cmd: &str) -> String {
    let start = cmd.find('<').map_or(0, |i| i + 1);
    let end = cmd.rfind('>').unwrap_or(cmd.len());
    cmd.get(start..end).unwrap_or("").to_string()
}

//! A real browser for the console's tests: Debian's `chromium`, headless,
//! driven through `chromedriver` (both installed by `./dev browser-tools`)
//! with the fantoccini WebDriver client. Each [`Browser`] starts its own
//! chromedriver on a free loopback port and stops it when dropped.
//!
//! JavaScript errors (and content-security-policy violations, which
//! chromium reports as console errors) are read from the browser log after
//! every page, so a test can assert that no page logged one.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where chromium and chromedriver are (Debian's packages).
fn tool(name: &str) -> Option<PathBuf> {
    let env = format!("JITGATE_{}", name.to_uppercase());
    if let Ok(p) = std::env::var(env) {
        return Some(p.into());
    }
    ["/usr/bin", "/usr/local/bin"]
        .iter()
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.exists())
}

/// A headless chromium session and the chromedriver serving it.
pub struct Browser {
    driver: Child,
    /// The WebDriver session.
    pub client: Client,
    /// JavaScript/CSP errors seen so far, with the page they came from.
    pub js_errors: Vec<String>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Browser {
    /// Start chromedriver and open a headless chromium window of
    /// `width`×`height`. Panics with the install hint when they are missing.
    pub async fn start(width: u32, height: u32) -> Browser {
        let driver_bin = tool("chromedriver")
            .expect("chromedriver is missing: run `./dev browser-tools` (Debian: chromium-driver)");
        let chromium = tool("chromium")
            .expect("chromium is missing: run `./dev browser-tools` (Debian: chromium)");
        let port = free_port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                    "--disable-background-networking", "--disable-sync", "--hide-scrollbars",
                    format!("--window-size={width},{height}"),
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!("a JSON object"),
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => panic!("chromedriver did not start: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        client
            .set_window_size(width, height)
            .await
            .expect("window size");
        Browser {
            driver,
            client,
            js_errors: Vec::new(),
        }
    }

    /// Open `url` and collect what the browser logged meanwhile.
    pub async fn goto(&mut self, url: &str) {
        self.client.goto(url).await.expect("navigate");
        self.collect_log().await;
    }

    /// The browser log since the last read; SEVERE entries are recorded as
    /// JavaScript errors.
    pub async fn collect_log(&mut self) {
        let page = self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        let log = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .unwrap_or(Value::Null);
        for entry in log.as_array().into_iter().flatten() {
            if entry.get("level").and_then(Value::as_str) == Some("SEVERE") {
                let msg = entry.get("message").and_then(Value::as_str).unwrap_or("");
                self.js_errors.push(format!("{page}: {msg}"));
            }
        }
    }

    /// The element `css` finds (waiting up to 10 s for it).
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        tokio::time::timeout(
            Duration::from_secs(10),
            self.client.wait().for_element(Locator::Css(css)),
        )
        .await
        .unwrap_or_else(|_| panic!("no element `{css}` within 10 s"))
        .unwrap_or_else(|e| panic!("no element `{css}`: {e}"))
    }

    /// Whether `css` matches anything now.
    pub async fn has(&self, css: &str) -> bool {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map(|v| !v.is_empty())
            .unwrap_or(false)
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(b) => b.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Click `css` (a link or a form's button) and wait for the page it
    /// leads to: until the old document is gone (its root element turns
    /// stale), at most 10 s. Then collect the log.
    pub async fn click(&mut self, css: &str) {
        let old = self.client.find(Locator::Css("html")).await.ok();
        self.find(css).await.click().await.expect("click");
        if let Some(old) = old {
            let deadline = Instant::now() + Duration::from_secs(10);
            while old.tag_name().await.is_ok() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            self.client.wait().for_element(Locator::Css("body")),
        )
        .await;
        self.collect_log().await;
    }

    /// Type `text` into the field `css`.
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("type");
    }

    /// Save a PNG of the page at `width` px wide into `dir/name-width.png`.
    pub async fn screenshot(&mut self, dir: &std::path::Path, name: &str, width: u32) {
        let _ = std::fs::create_dir_all(dir);
        self.client
            .set_window_size(width, 900)
            .await
            .expect("window size");
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(dir.join(format!("{name}-{width}.png")), png).expect("write screenshot");
    }

    /// End the session and chromedriver.
    pub async fn close(mut self) {
        let client = self.client.clone();
        let _ = client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// chromedriver's log endpoint (a Selenium extension it serves in W3C
/// mode): `POST /session/{id}/se/log {"type": "browser"}`.
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/se/log", session_id.unwrap_or("")))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

/// Where the suite writes its screenshots: `target/console-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("console-screenshots")
}

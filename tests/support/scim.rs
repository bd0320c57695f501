//! A real SCIM 2.0 server for one test: `scim2-server` (PyPI), in memory,
//! on loopback, with a bearer token. `./dev test` installs it into a venv
//! under the target folder (`scim-venv/`); `JITGATE_SCIM_SERVER` names
//! another binary.

use serde_json::{Value, json};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::http::{Response, send_with};

/// The bearer token the server accepts.
pub const TOKEN: &str = "scim-test-token-0123456789";

/// A running scim2-server; killed on drop.
pub struct ScimServer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its base URL (`http://…/v2`).
    pub base: String,
}

impl ScimServer {
    /// Start one and wait until it answers.
    pub fn start() -> ScimServer {
        let bin = std::env::var_os("JITGATE_SCIM_SERVER")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| crate::target_dir().join("scim-venv/bin/scim2-server"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&bin)
            .args(["--bearer-token", TOKEN, "--hostname", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{} is required by this test ({e}); `./dev test` installs it",
                    bin.display()
                )
            });
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let s = ScimServer {
            child,
            addr,
            base: format!("http://{addr}/v2"),
        };
        let up = crate::server::wait_for(Duration::from_secs(30), || {
            std::net::TcpStream::connect(addr)
                .ok()
                .map(|_| s.call("GET", "/v2/ServiceProviderConfig", None))
                .filter(|r| r.status == 200)
        });
        assert!(up.is_some(), "scim2-server did not start on {addr}");
        s
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Response {
        let bytes = body.map(|b| b.to_string().into_bytes());
        send_with(
            self.addr,
            method,
            path,
            &[("Authorization".into(), format!("Bearer {TOKEN}"))],
            bytes.as_deref(),
        )
    }

    /// Create a user; its id.
    pub fn user(&self, user_name: &str) -> String {
        let r = self.call(
            "POST",
            "/v2/Users",
            Some(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name})),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()["id"].as_str().unwrap_or_default().to_string()
    }

    /// Create a group; its id.
    pub fn group(&self, display_name: &str) -> String {
        let r = self.call(
            "POST",
            "/v2/Groups",
            Some(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": display_name})),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()["id"].as_str().unwrap_or_default().to_string()
    }

    /// The member ids of a group.
    pub fn members(&self, group_id: &str) -> Vec<String> {
        let r = self.call("GET", &format!("/v2/Groups/{group_id}"), None);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["members"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m["value"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Add a member by hand.
    pub fn add_member(&self, group_id: &str, user_id: &str) {
        let r = self.call(
            "PATCH",
            &format!("/v2/Groups/{group_id}"),
            Some(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": user_id}]}],
            })),
        );
        assert!(r.status == 200 || r.status == 204, "{}", r.body);
    }
}

impl Drop for ScimServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

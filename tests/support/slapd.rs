//! A real OpenLDAP `slapd` on loopback for one test: a temporary config
//! and MDB database, seeded with `dc=example,dc=org`, its `ou=people` and
//! `ou=groups`, and the group `cn=Backup Operators`. Needs the Debian
//! packages `slapd` and `ldap-utils` (`./dev` installs them).
//!
//! [`Slapd::start_tls`] also serves TLS with a certificate from a CA the
//! test makes: `ldaps://` on a second port, StartTLS on the first, and
//! every operation refused unless it came over TLS (`security tls=1`), so
//! a client that skipped the upgrade cannot pass unnoticed.

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The directory's administrator (also jitgate's bind DN in the tests).
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
/// Its password.
pub const ADMIN_PASSWORD: &str = "secret";
/// The group the tests grant.
pub const GROUP: &str = "cn=Backup Operators,ou=groups,dc=example,dc=org";

/// A running slapd; killed on drop.
pub struct Slapd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// `ldap://127.0.0.1:PORT`.
    pub url: String,
    /// Set by [`Slapd::start_tls`].
    pub tls: Option<Tls>,
}

/// How to reach a TLS slapd.
pub struct Tls {
    /// `ldaps://127.0.0.1:PORT`.
    pub ldaps_url: String,
    /// The PEM of the CA that signed the server's certificate.
    pub ca_file: PathBuf,
}

/// A CA made for one test: its PEM, written to `path`, and the issuer.
pub fn make_ca(path: &Path) -> Issuer<'static, KeyPair> {
    let key = KeyPair::generate().expect("ca key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("ca cert");
    std::fs::write(path, cert.pem()).expect("write the CA");
    Issuer::new(params, key)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Slapd {
    /// Start and seed a directory.
    pub fn start() -> Slapd {
        Slapd::start_with(false)
    }

    /// Start and seed a directory that speaks only TLS (see the module).
    pub fn start_tls() -> Slapd {
        Slapd::start_with(true)
    }

    fn start_with(tls: bool) -> Slapd {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("db")).expect("db dir");
        let tls_conf = if tls {
            let ca = make_ca(&dir.path().join("ca.pem"));
            let key = KeyPair::generate().expect("key");
            let params =
                CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                    .expect("params");
            let cert = params.signed_by(&key, &ca).expect("cert");
            std::fs::write(dir.path().join("cert.pem"), cert.pem()).expect("cert.pem");
            std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).expect("key.pem");
            format!(
                "TLSCACertificateFile {0}/ca.pem\n\
                 TLSCertificateFile {0}/cert.pem\n\
                 TLSCertificateKeyFile {0}/key.pem\n\
                 security tls=1\n",
                dir.path().display()
            )
        } else {
            String::new()
        };
        let conf = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             {tls_conf}\
             pidfile {0}/slapd.pid\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             database mdb\n\
             suffix \"dc=example,dc=org\"\n\
             rootdn \"{ADMIN_DN}\"\n\
             rootpw {ADMIN_PASSWORD}\n\
             directory {0}/db\n\
             maxsize 10485760\n",
            dir.path().display()
        );
        std::fs::write(dir.path().join("slapd.conf"), conf).expect("slapd.conf");
        let tls = tls.then(|| Tls {
            ldaps_url: format!("ldaps://127.0.0.1:{}", free_port()),
            ca_file: dir.path().join("ca.pem"),
        });
        let mut s = Slapd {
            dir,
            child: None,
            url: format!("ldap://127.0.0.1:{}", free_port()),
            tls,
        };
        s.restart();
        s.ldif(
            "ldapadd",
            "dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
             dn: ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: ou=groups,dc=example,dc=org\nobjectClass: organizationalUnit\nou: groups\n\n\
             dn: cn=Backup Operators,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: Backup Operators\nmember: cn=admin,dc=example,dc=org\n",
        )
        .expect("seeding the directory");
        s
    }

    /// Stop it (the target is down); the database stays.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port and database.
    pub fn restart(&mut self) {
        self.stop();
        // Debian puts it in /usr/sbin, which a user's PATH may lack.
        let bin = if std::path::Path::new("/usr/sbin/slapd").exists() {
            "/usr/sbin/slapd"
        } else {
            "slapd"
        };
        // `-d 256` (stats): every operation and its result code, to count
        // what reached the directory.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("slapd.log"))
            .expect("slapd.log");
        let mut listen = format!("{}/", self.url);
        if let Some(t) = &self.tls {
            listen.push_str(&format!(" {}/", t.ldaps_url));
        }
        let child = Command::new(bin)
            .args(["-d", "256", "-h"])
            .arg(listen)
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("slapd is required by this test ({e}); `./dev test` installs it")
            });
        self.child = Some(child);
        let up = crate::server::wait_for(Duration::from_secs(20), || self.search(GROUP, "cn").ok());
        // Before seeding the group does not exist, but the server answers.
        if up.is_none() {
            let answered = crate::server::wait_for(Duration::from_secs(5), || {
                self.tool("ldapsearch")
                    .args(["-b", "", "-s", "base", "-LLL", "1.1"])
                    .output()
                    .ok()
                    .filter(|o| o.status.success())
            });
            assert!(answered.is_some(), "slapd did not start on {}", self.url);
        }
    }

    fn search(&self, base: &str, attr: &str) -> Result<String, String> {
        let out = self
            .tool("ldapsearch")
            .args(["-D", ADMIN_DN, "-w", ADMIN_PASSWORD])
            .args(["-b", base, "-s", "base", "-LLL", "-o", "ldif-wrap=no", attr])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// An OpenLDAP client tool aimed at this server (StartTLS with the
    /// test's CA when it speaks TLS).
    fn tool(&self, tool: &str) -> Command {
        let mut c = Command::new(tool);
        c.args(["-x", "-H", &self.url]);
        if let Some(t) = &self.tls {
            c.arg("-ZZ").env("LDAPTLS_CACERT", &t.ca_file);
        }
        c
    }

    /// Run `tool` (`ldapadd`, `ldapmodify`) with `ldif` on stdin.
    pub fn ldif(&self, tool: &str, ldif: &str) -> Result<(), String> {
        let mut child = self
            .tool(tool)
            .args(["-D", ADMIN_DN, "-w", ADMIN_PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{tool}: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(ldif.as_bytes())
                .map_err(|e| e.to_string())?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// The group's `member` values, lowercased.
    pub fn members(&self, group: &str) -> Vec<String> {
        self.values(group, "member")
    }

    /// The entry's `attr` values, lowercased.
    pub fn values(&self, entry: &str, attr: &str) -> Vec<String> {
        let prefix = format!("{}: ", attr.to_lowercase());
        self.search(entry, attr)
            .expect("reading the entry")
            .lines()
            .filter_map(|l| {
                l.get(..prefix.len())
                    .filter(|p| p.to_lowercase() == prefix)
                    .map(|_| l[prefix.len()..].trim().to_lowercase())
            })
            .collect()
    }

    /// Add a person `uid=<uid>,ou=people,…` (an `inetOrgPerson`); its DN.
    pub fn add_user(&self, uid: &str) -> String {
        let dn = format!("uid={uid},ou=people,dc=example,dc=org");
        self.ldif(
            "ldapadd",
            &format!("dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n"),
        )
        .expect("adding a user");
        dn
    }

    /// Add a `groupOfUniqueNames` `cn=<cn>,ou=groups,…` (its placeholder
    /// `uniqueMember` the admin); its DN.
    pub fn add_unique_group(&self, cn: &str) -> String {
        let dn = format!("cn={cn},ou=groups,dc=example,dc=org");
        self.ldif(
            "ldapadd",
            &format!(
                "dn: {dn}\nobjectClass: groupOfUniqueNames\ncn: {cn}\nuniqueMember: {ADMIN_DN}\n"
            ),
        )
        .expect("adding a groupOfUniqueNames");
        dn
    }

    /// The result codes of every Modify of `group` so far, in order (0 =
    /// done, 20 = value already there, 16 = value already gone).
    pub fn modifications(&self, group: &str) -> Vec<u32> {
        let log = std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default();
        let want = format!("mod dn=\"{}\"", group.to_lowercase());
        let mut ops = std::collections::BTreeSet::new();
        let mut codes = Vec::new();
        for line in log.lines() {
            let Some(at) = line.find("conn=") else {
                continue;
            };
            let rest = &line[at..];
            let mut parts = rest.splitn(3, ' ');
            let (Some(conn), Some(op), Some(what)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let key = format!("{conn} {op}");
            if what.to_lowercase() == want {
                ops.insert(key);
            } else if what.starts_with("RESULT") && ops.remove(&key) {
                let err = what
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("err="))
                    .and_then(|e| e.parse().ok())
                    .unwrap_or(u32::MAX);
                codes.push(err);
            }
        }
        codes
    }

    /// Add `dn` to the group by hand.
    pub fn add_member(&self, group: &str, dn: &str) {
        self.add_value(group, "member", dn);
    }

    /// Add `value` to the entry's `attr` by hand.
    pub fn add_value(&self, entry: &str, attr: &str, value: &str) {
        self.ldif(
            "ldapmodify",
            &format!("dn: {entry}\nchangetype: modify\nadd: {attr}\n{attr}: {value}\n"),
        )
        .expect("adding a value by hand");
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

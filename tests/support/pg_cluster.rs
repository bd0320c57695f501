//! A private PostgreSQL cluster for one test, where passwords are really
//! checked: the machine's server trusts every loopback connection, so a
//! login's password (or its `VALID UNTIL`) is never put to the test there.
//!
//! `initdb` from the newest `/usr/lib/postgresql/*/bin` into a temporary
//! directory, SCRAM-SHA-256 for every TCP connection (trust only on its
//! own Unix socket), a free loopback port; stopped and deleted on drop.
//! As root the server runs as the `postgres` account (it refuses root).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The superuser's password in every such cluster.
pub const SUPERUSER_PASSWORD: &str = "cluster-admin-pw";

/// A running cluster; stopped on drop.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

fn newest_bin() -> PathBuf {
    let mut bins: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| {
                    let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                    let bin = e.path().join("bin");
                    bin.join("initdb").is_file().then_some((v, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    bins.sort();
    bins.pop()
        .map(|(_, b)| b)
        .expect("PostgreSQL's server binaries (/usr/lib/postgresql/*/bin/initdb) are required")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PgCluster {
    /// initdb and start a cluster.
    pub fn start() -> PgCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let c = PgCluster {
            bin: newest_bin(),
            as_postgres: is_root(),
            port,
            dir,
        };
        std::fs::write(c.path("pw"), SUPERUSER_PASSWORD).expect("pwfile");
        std::fs::create_dir_all(c.path("run")).expect("socket dir");
        if c.as_postgres {
            // The temporary directory is root's (0700): open it to the
            // server's account, and hand it what it writes.
            let open = Command::new("chmod").arg("755").arg(c.dir.path()).status();
            let own = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(c.dir.path())
                .status();
            assert!(
                open.is_ok_and(|s| s.success()) && own.is_ok_and(|s| s.success()),
                "could not hand {} to the postgres account",
                c.dir.path().display()
            );
        }
        let init = c.run(
            "initdb",
            &[
                "-D",
                &c.path_str("data"),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--pwfile",
                &c.path_str("pw"),
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        assert!(init.status.success(), "initdb: {}", text(&init));
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c password_encryption=scram-sha-256",
            c.path_str("run")
        );
        let start = c.run(
            "pg_ctl",
            &[
                "-D",
                &c.path_str("data"),
                "-l",
                &c.path_str("log"),
                "-w",
                "-t",
                "60",
                "-o",
                &opts,
                "start",
            ],
        );
        assert!(
            start.status.success(),
            "pg_ctl start: {}\n{}",
            text(&start),
            std::fs::read_to_string(c.path("log")).unwrap_or_default()
        );
        c
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn path_str(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args)
            .current_dir(Path::new("/"))
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", exe.display()))
    }

    /// A connection URL over TCP (so password-checked) as `user`.
    pub fn url(&self, user: &str, password: &str) -> String {
        format!(
            "postgres://{user}:{password}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// The superuser's URL.
    pub fn admin_url(&self) -> String {
        self.url("postgres", SUPERUSER_PASSWORD)
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &["-D", &self.path_str("data"), "-m", "immediate", "stop"],
        );
    }
}

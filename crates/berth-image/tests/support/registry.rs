//! A real Debian `docker-registry`, one per test, on 127.0.0.1:<free port>.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
const HTPASSWD_BIN: &str = "/usr/bin/htpasswd";

pub struct TestRegistry {
    child: Child,
    pub host: String,
    dir: tempfile::TempDir,
}

impl TestRegistry {
    /// Starts an anonymous registry, or prints why it cannot and returns None.
    pub fn start() -> Option<Self> {
        Self::start_with(None)
    }

    /// Starts a registry protected by htpasswd (bcrypt) with one user.
    pub fn start_with_user(user: &str, password: &str) -> Option<Self> {
        Self::start_with(Some((user, password)))
    }

    /// Starts a registry that wants bearer tokens from `token`.
    pub fn start_with_token_service(token: &super::token::TokenService) -> Option<Self> {
        let auth = format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            token.realm,
            super::token::SERVICE,
            super::token::ISSUER,
            token.cert_pem.display()
        );
        Self::start_configured(None, Some(auth))
    }

    fn start_with(user: Option<(&str, &str)>) -> Option<Self> {
        Self::start_configured(user, None)
    }

    fn start_configured(user: Option<(&str, &str)>, auth: Option<String>) -> Option<Self> {
        if !Path::new(REGISTRY_BIN).exists() {
            eprintln!("SKIPPED: {REGISTRY_BIN} missing (install docker-registry: scripts/packages.sh TEST_PACKAGES)");
            return None;
        }
        if user.is_some() && !Path::new(HTPASSWD_BIN).exists() {
            eprintln!("SKIPPED: {HTPASSWD_BIN} missing (install apache2-utils: scripts/packages.sh TEST_PACKAGES)");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let auth = match (user, auth) {
            (Some((user, password)), _) => htpasswd_auth(dir.path(), user, password),
            (None, auth) => auth.unwrap_or_default(),
        };
        let config = dir.path().join("config.yml");
        fs::write(&config, config_yaml(dir.path(), port, &auth)).expect("write config.yml");
        let log = fs::File::create(dir.path().join("registry.log")).expect("create log");
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        let mut registry = TestRegistry {
            child,
            host: format!("127.0.0.1:{port}"),
            dir,
        };
        registry.wait_ready();
        Some(registry)
    }

    /// `127.0.0.1:<port>/<path>`
    pub fn reference(&self, path: &str) -> berth_image::Reference {
        format!("{}/{path}", self.host).parse().expect("reference")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Where the registry keeps a blob's bytes (to tamper with them).
    pub fn blob_data_path(&self, digest: &berth_image::Digest) -> PathBuf {
        let hex = digest.hex();
        self.dir.path().join(format!(
            "storage/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited with {status}:\n{}", self.log());
            }
            if TcpStream::connect(&self.host).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not listen on {} within 20s:\n{}",
            self.host,
            self.log()
        );
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local_addr").port()
}

fn htpasswd_auth(dir: &Path, user: &str, password: &str) -> String {
    let output = Command::new(HTPASSWD_BIN)
        .args(["-Bbn", user, password])
        .output()
        .expect("run htpasswd");
    assert!(
        output.status.success(),
        "htpasswd failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = dir.join("htpasswd");
    fs::write(&path, &output.stdout).expect("write htpasswd");
    format!(
        "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
        path.display()
    )
}

fn config_yaml(dir: &Path, port: u16, auth: &str) -> String {
    format!(
        "version: 0.1\nlog:\n  level: debug\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: berth-test-secret\n{auth}",
        dir.join("storage").display()
    )
}

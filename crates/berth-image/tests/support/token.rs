//! A small token service for the registry's bearer-token auth: checks basic
//! credentials and issues an ES256 JWT, signed with a key whose self-signed
//! certificate the registry trusts (`rootcertbundle`), granting what was asked.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use super::fake::{response, FakeServer, Seen};

pub const SERVICE: &str = "berth-test-registry";
pub const ISSUER: &str = "berth-test-token-service";
const OPENSSL_BIN: &str = "/usr/bin/openssl";

pub struct TokenService {
    pub server: FakeServer,
    pub realm: String,
    pub cert_pem: PathBuf,
    _dir: tempfile::TempDir,
}

struct Signer {
    key: EcdsaKeyPair,
    cert_der_b64: String,
    rng: SystemRandom,
}

impl TokenService {
    /// Starts the service for one user, or prints why it cannot and returns None.
    pub fn start(user: &str, password: &str) -> Option<Self> {
        if !Path::new(OPENSSL_BIN).exists() {
            eprintln!(
                "SKIPPED: {OPENSSL_BIN} missing (needed to make the token signing certificate)"
            );
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let signer = Arc::new(make_signer(dir.path()));
        let expected = berth_image::Credentials::new(user, password).basic_header();
        let server = FakeServer::start(Box::new(move |seen: &Seen, _| {
            if seen.authorization.as_deref() != Some(expected.as_str()) {
                return response(
                    "401 Unauthorized",
                    &[],
                    br#"{"details":"wrong credentials"}"#,
                );
            }
            let token = signer.token(&scopes(&seen.target));
            response(
                "200 OK",
                &[("Content-Type", "application/json")],
                format!(r#"{{"token":"{token}"}}"#).as_bytes(),
            )
        }));
        let realm = format!("http://{}/token", server.host);
        Some(TokenService {
            server,
            realm,
            cert_pem: dir.path().join("cert.pem"),
            _dir: dir,
        })
    }

    pub fn token_requests(&self) -> usize {
        self.server.requests().len()
    }
}

fn make_signer(dir: &Path) -> Signer {
    let run = |args: &[&str]| {
        let out = Command::new(OPENSSL_BIN)
            .current_dir(dir)
            .args(args)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ]
    .into_iter()
    .chain([
        "-keyout",
        "key.pem",
        "-out",
        "cert.pem",
        "-subj",
        "/CN=berth-test-token",
        "-days",
        "1",
    ])
    .collect::<Vec<_>>());
    run(&[
        "pkcs8", "-topk8", "-nocrypt", "-in", "key.pem", "-outform", "DER", "-out", "key.der",
    ]);
    run(&[
        "x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der",
    ]);
    let rng = SystemRandom::new();
    let pkcs8 = std::fs::read(dir.join("key.der")).expect("key.der");
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng).expect("load key");
    let cert_der_b64 = STANDARD.encode(std::fs::read(dir.join("cert.der")).expect("cert.der"));
    Signer {
        key,
        cert_der_b64,
        rng,
    }
}

impl Signer {
    /// A JWT granting each `repository:<name>:<actions>` scope.
    fn token(&self, scopes: &[String]) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let access: Vec<serde_json::Value> = scopes
            .iter()
            .filter_map(|scope| {
                let mut parts = scope.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
            })
            .collect();
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [self.cert_der_b64]});
        let claims = serde_json::json!({
            "iss": ISSUER, "sub": "alice", "aud": SERVICE, "exp": now + 300, "nbf": now - 10,
            "iat": now, "jti": format!("{now}-{}", scopes.join(" ")), "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .expect("sign");
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }
}

/// The `scope=` parameters of a request target, percent-decoded.
fn scopes(target: &str) -> Vec<String> {
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
    query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("scope="))
        .map(percent_decode)
        .collect()
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

//! HTTPS upload over rustls to a real TLS server on loopback: CA-verified, pinned, refused on a
//! wrong pin (the batch is kept and `send` delivers it later), and the hub side verifies what it
//! receives byte for byte.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use synchro_hub::ingest::{open_batch, Acceptance};
use synchro_keys::operator::OperatorPublic;
use synchro_shared::batch::BatchSignature;
use synchro_synth::Config;
use synchro_tests::{ok, run, small_scenario, text, Territory};

struct Certs {
    ca_pem: String,
    server_pem: String,
    server_der: CertificateDer<'static>,
    server_key: Vec<u8>,
}

fn certs() -> Certs {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Synchro test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress(std::net::IpAddr::V4(
            std::net::Ipv4Addr::LOCALHOST,
        )));
    let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
    Certs {
        ca_pem: ca_cert.pem(),
        server_pem: cert.pem(),
        server_der: cert.der().clone(),
        server_key: key.serialize_der(),
    }
}

/// What the test hub received: (operator, records) per accepted upload.
type Received = Arc<Mutex<Vec<(String, usize)>>>;

/// A one-endpoint HTTPS server that verifies uploads exactly as the hub does.
fn serve(
    certs: &Certs,
    operator: OperatorPublic,
    identity: age::x25519::Identity,
) -> (u16, Received) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![certs.server_der.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certs.server_key.clone())),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received: Received = Arc::default();
    let sink = Arc::clone(&received);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16).flatten() {
            let conn = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, stream);
            let mut reader = BufReader::new(&mut tls);
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if line == "\r\n" {
                    break;
                }
                headers.push(line.trim_end().to_string());
            }
            let header = |name: &str| {
                headers.iter().find_map(|h| {
                    let (k, v) = h.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
            };
            let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) else {
                continue;
            };
            let mut body = vec![0u8; len];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let sig = header("synchro-signature")
                .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
                .and_then(|j| BatchSignature::from_json(&String::from_utf8_lossy(&j)).ok());
            let (status, reply) = match sig {
                None => (
                    "400 Bad Request",
                    r#"{"status":"refused","code":"unsigned","message":"no signature"}"#
                        .to_string(),
                ),
                Some(sig) => match open_batch(
                    &body,
                    &sig,
                    &operator,
                    &identity,
                    &Acceptance {
                        key_epochs: vec![1],
                        key_fingerprints: vec![],
                    },
                ) {
                    Ok(batch) => {
                        sink.lock()
                            .unwrap()
                            .push((batch.header.operator_id.clone(), batch.records.len()));
                        (
                            "200 OK",
                            format!(
                                r#"{{"status":"accepted","message":"{} records","batch_id":"b1"}}"#,
                                batch.records.len()
                            ),
                        )
                    }
                    Err(r) => (
                        "400 Bad Request",
                        format!(
                            r#"{{"status":"refused","code":"{}","message":"refused"}}"#,
                            r.code()
                        ),
                    ),
                },
            };
            let _ = write!(
                tls,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    (port, received)
}

#[test]
fn uploads_verify_the_hub_certificate_and_survive_a_failed_attempt() {
    let t = Territory::new();
    let c = certs();
    std::fs::write(t.path("ca.pem"), &c.ca_pem).unwrap();
    std::fs::write(t.path("server.pem"), &c.server_pem).unwrap();
    let other = certs();
    std::fs::write(t.path("other.pem"), &other.server_pem).unwrap();

    let (scenario, files) =
        small_scenario(&t.path("data"), 1, 1, (2026, 10), Config::default().persons);
    let op = &scenario.operators[0];
    let ws_probe = t.path("probe");
    let _ = ws_probe;
    // The server needs the operator's public key, so create the workspace first with a URL
    // that is fixed once the server has a port.
    let listener_port_placeholder = "https://127.0.0.1:1";
    let ws = t.operator(
        &op.id,
        &scenario.profile(0),
        &[
            "--hub-url",
            listener_port_placeholder,
            "--ca-certificate",
            &t.p("ca.pem"),
        ],
    );
    let operator =
        synchro_keys::operator::load_public(&ws.join(format!("keys/operator-{}.pub.toml", op.id)))
            .unwrap();
    let (port, received) = serve(&c, operator, t.hub_identity());
    let cfg_path = ws.join("agent.toml");
    let cfg_text = std::fs::read_to_string(&cfg_path).unwrap().replace(
        listener_port_placeholder,
        &format!("https://127.0.0.1:{port}"),
    );
    std::fs::write(&cfg_path, &cfg_text).unwrap();
    let cfg = cfg_path.to_str().unwrap();
    let input = files[0].path.to_str().unwrap();

    // 1. Verified against the configured CA.
    let out = ok(
        "synchro-agent",
        &[
            "run", "--config", cfg, "--input", input, "--period", "2026-10",
        ],
    );
    assert!(out.contains("accepted"), "{out}");
    assert_eq!(
        received.lock().unwrap().as_slice(),
        &[(op.id.clone(), files[0].rows)]
    );

    // 2. Pinned to the hub's own certificate.
    let pinned = cfg_text.replace(
        "ca_certificate = \"hub-ca.pem\"",
        &format!("pinned_certificate = {:?}", t.p("server.pem")),
    );
    std::fs::write(&cfg_path, &pinned).unwrap();
    let out = ok(
        "synchro-agent",
        &[
            "run", "--config", cfg, "--input", input, "--period", "2026-10",
        ],
    );
    assert!(out.contains("accepted"), "{out}");

    // 3. A wrong pin refuses the connection; the sealed batch is kept, and `send` delivers it.
    std::fs::write(
        &cfg_path,
        pinned.replace(&t.p("server.pem"), &t.p("other.pem")),
    )
    .unwrap();
    let failed = run(
        "synchro-agent",
        &[
            "run", "--config", cfg, "--input", input, "--period", "2026-10",
        ],
    );
    let msg = text(&failed);
    assert_eq!(failed.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains("upload failed") && msg.contains("synchro-agent send --batch"),
        "{msg}"
    );
    let kept = msg
        .split("synchro-agent send --batch ")
        .nth(1)
        .and_then(|s| s.split('`').next())
        .unwrap()
        .to_string();
    assert!(std::path::Path::new(&kept).exists());
    assert_eq!(
        received.lock().unwrap().len(),
        2,
        "nothing reached the server"
    );
    std::fs::write(&cfg_path, &pinned).unwrap();
    let out = ok(
        "synchro-agent",
        &["send", "--config", cfg, "--batch", &kept],
    );
    assert!(out.contains("accepted"), "{out}");
    assert_eq!(received.lock().unwrap().len(), 3);
}

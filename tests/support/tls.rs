//! A local HTTPS server for tests: a self-signed certificate for `localhost`, made by the
//! test, and rustls answering every request with one fixed JSON body.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

/// Serves `body` over HTTPS on a free port; returns the URL of its `/api/1.4/` and the PEM of
/// the certificate a client must trust.
pub fn serve_tls(body: String) -> (String, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let certificate_pem = certified.cert.pem();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key.into())
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (config, body) = (Arc::clone(&config), body.clone());
            std::thread::spawn(move || {
                let connection = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(connection, stream);
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                // A failed handshake (a client that does not trust us) ends here.
                while !request.ends_with(b"\r\n\r\n") {
                    match tls.read(&mut byte) {
                        Ok(1) => request.push(byte[0]),
                        _ => return,
                    }
                }
                let _ = write!(
                    tls,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    (format!("https://localhost:{port}/api/1.4/"), certificate_pem)
}

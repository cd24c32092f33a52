//! A client for the CRI streaming server's Exec endpoint (the URL `Exec` returns).
//!
//! containerd's streaming server (kubelet's `cri/streaming` package) accepts SPDY
//! and, for the same URL, websocket with the channel subprotocols; the kubelet and
//! kubectl speak `v4.channel.k8s.io`. Every binary message starts with one channel
//! byte: 0 stdin, 1 stdout, 2 stderr, 3 the exit status (a JSON `metav1.Status`:
//! `Success`, or `Failure` with reason `NonZeroExitCode` and the code in
//! `details.causes[reason=ExitCode].message`). v4 has no way to close stdin alone,
//! so stdin tests send exactly what the command reads.

use crate::env::TIMEOUT;
use std::net::TcpStream;
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

pub const PROTOCOL: &str = "v4.channel.k8s.io";

#[derive(Debug, Default)]
pub struct Streamed {
    pub stdout: String,
    pub stderr: String,
    pub status: serde_json::Value,
}

impl Streamed {
    /// The exit code the status message reports.
    pub fn exit_code(&self) -> i32 {
        match self.status["status"].as_str() {
            Some("Success") => 0,
            Some("Failure") if self.status["reason"] == "NonZeroExitCode" => self.status["details"]
                ["causes"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["reason"] == "ExitCode"))
                .and_then(|c| c["message"].as_str())
                .and_then(|m| m.parse().ok())
                .unwrap_or_else(|| panic!("exit status without a code: {}", self.status)),
            _ => panic!("no exit status in the stream: {self:?}"),
        }
    }
}

/// Connect to an Exec URL, send `stdin` (if any) on channel 0, and collect the
/// output channels until the server closes the stream.
pub fn exec(url: &str, stdin: Option<&[u8]>) -> Streamed {
    let ws_url = url.replacen("http://", "ws://", 1);
    let mut req = ws_url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", PROTOCOL.parse().unwrap());
    let host = ws_url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let tcp = TcpStream::connect(&host).unwrap_or_else(|e| panic!("connect {host}: {e}"));
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    let (mut ws, resp) =
        tungstenite::client(req, tcp).unwrap_or_else(|e| panic!("websocket to {url}: {e}"));
    assert_eq!(
        resp.headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok()),
        Some(PROTOCOL),
        "the streaming server did not agree to {PROTOCOL}"
    );
    if let Some(data) = stdin {
        let mut m = vec![0u8];
        m.extend_from_slice(data);
        ws.send(Message::Binary(m.into())).unwrap();
    }
    let mut out = Streamed::default();
    loop {
        match ws.read() {
            Ok(Message::Binary(b)) if !b.is_empty() => {
                let text = String::from_utf8_lossy(&b[1..]);
                match b[0] {
                    1 => out.stdout.push_str(&text),
                    2 => out.stderr.push_str(&text),
                    3 => out.status = serde_json::from_str(&text).unwrap(),
                    c => panic!("message on unexpected channel {c}: {text}"),
                }
            }
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => break,
            // The Go server may drop the TCP connection right after its status.
            Err(tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            )) => break,
            Err(e) => panic!("reading the exec stream: {e} (so far: {out:?})"),
        }
    }
    out
}

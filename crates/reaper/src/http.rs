//! One HTTP/1.1 exchange with the Engine API: a request without a body and
//! `Connection: close`, the response read whole (Content-Length, chunked, or to the
//! end of the connection), every read and write bounded by one deadline (Ryuk's
//! `RYUK_REQUEST_TIMEOUT` is a per-request context).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The largest response taken (docker's lists of a busy host are a few MB).
const MAX_BODY: usize = 64 << 20;
/// The longest status or header line taken.
const MAX_LINE: usize = 64 << 10;

pub trait Conn: Read + Write {
    fn set_timeouts(&self, d: Duration) -> io::Result<()>;
}

impl Conn for UnixStream {
    fn set_timeouts(&self, d: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(d))?;
        self.set_write_timeout(Some(d))
    }
}

impl Conn for TcpStream {
    fn set_timeouts(&self, d: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(d))?;
        self.set_write_timeout(Some(d))
    }
}

/// A connection whose every read and write gets the time left until `until`.
struct Deadline<C> {
    c: C,
    until: Instant,
}

impl<C: Conn> Deadline<C> {
    fn arm(&self) -> io::Result<()> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "request timed out"));
        }
        self.c.set_timeouts(left)
    }
}

impl<C: Conn> Read for Deadline<C> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.arm()?;
        self.c.read(buf)
    }
}

impl<C: Conn> Write for Deadline<C> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.arm()?;
        self.c.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.c.flush()
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// `method target` on `c`, answered before `until`.
pub fn exchange<C: Conn>(c: C, until: Instant, method: &str, target: &str) -> io::Result<Response> {
    let mut d = Deadline { c, until };
    // `Host` is required by HTTP/1.1; docker's own client sends `api.moby.localhost`
    // over a unix socket, whose servers ignore it.
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: oxcart-test-reaper\r\nConnection: close\r\n\r\n"
    );
    d.write_all(req.as_bytes())?;
    d.flush()?;
    let mut r = BufReader::new(d);
    let status_line = line(&mut r)?;
    let mut parts = status_line.splitn(3, ' ');
    let (proto, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !proto.starts_with("HTTP/1.") {
        return Err(bad(format!("not an HTTP/1.x response: {status_line:?}")));
    }
    let status: u16 = code
        .parse()
        .map_err(|_| bad(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let l = line(&mut r)?;
        if l.is_empty() {
            break;
        }
        let (k, v) = l
            .split_once(':')
            .ok_or_else(|| bad(format!("bad header line {l:?}")))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    // RFC 9112 §6.3: no body for HEAD, 1xx, 204 and 304.
    if method == "HEAD" || status < 200 || status == 204 || status == 304 {
        return Ok(resp);
    }
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    resp.body = if chunked {
        dechunk(&mut r)?
    } else if let Some(n) = resp.header("content-length") {
        let n: usize = n
            .parse()
            .map_err(|_| bad(format!("bad Content-Length {n:?}")))?;
        if n > MAX_BODY {
            return Err(bad(format!("response of {n} bytes is too large")));
        }
        let mut b = vec![0; n];
        r.read_exact(&mut b)?;
        b
    } else {
        let mut b = Vec::new();
        r.by_ref().take(MAX_BODY as u64 + 1).read_to_end(&mut b)?;
        if b.len() > MAX_BODY {
            return Err(bad("response too large"));
        }
        b
    };
    Ok(resp)
}

/// One CRLF- (or LF-) terminated line, without its terminator.
fn line(r: &mut impl BufRead) -> io::Result<String> {
    let mut buf = Vec::new();
    r.take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf)?;
    if !buf.ends_with(b"\n") {
        return Err(if buf.len() > MAX_LINE {
            bad("response line too long")
        } else {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed mid-response",
            )
        });
    }
    buf.pop();
    if buf.ends_with(b"\r") {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| bad("response line is not UTF-8"))
}

/// A chunked body (RFC 9112 §7.1): size lines (extensions ignored), data, trailers.
pub fn dechunk(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let l = line(r)?;
        let size = l.split(';').next().unwrap_or("").trim();
        let n = usize::from_str_radix(size, 16)
            .map_err(|_| bad(format!("bad chunk size line {l:?}")))?;
        if n == 0 {
            // Trailers, up to the empty line.
            while !line(r)?.is_empty() {}
            return Ok(out);
        }
        if out.len() + n > MAX_BODY {
            return Err(bad("response too large"));
        }
        let start = out.len();
        out.resize(start + n, 0);
        r.read_exact(&mut out[start..])?;
        if !line(r)?.is_empty() {
            return Err(bad("chunk data longer than its size"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    /// `answer` served to one exchange; the request the server read and the response.
    fn serve(answer: &'static [u8], method: &str) -> (String, io::Result<Response>) {
        let (a, mut b) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.ends_with(b"\r\n\r\n") {
                let n = b.read(&mut buf).unwrap();
                req.extend_from_slice(&buf[..n]);
            }
            b.write_all(answer).unwrap();
            String::from_utf8(req).unwrap()
        });
        let until = Instant::now() + Duration::from_secs(5);
        let r = exchange(a, until, method, "/v1.41/containers/json?all=1");
        (t.join().unwrap(), r)
    }

    #[test]
    fn content_length_chunked_and_to_the_end() {
        let (req, r) = serve(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nApi-Version: 1.41\r\n\r\n[]",
            "GET",
        );
        assert!(
            req.starts_with("GET /v1.41/containers/json?all=1 HTTP/1.1\r\n"),
            "{req}"
        );
        assert!(req.contains("\r\nConnection: close\r\n"));
        let r = r.unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"[]"[..]));
        assert_eq!(r.header("api-version"), Some("1.41"));
        let (_, r) = serve(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\n[{}\r\n1\r\n]\r\n0\r\nX-T: 1\r\n\r\n",
            "GET",
        );
        assert_eq!(r.unwrap().body, b"[{}]");
        let (_, r) = serve(b"HTTP/1.0 404 Not Found\r\n\r\n{\"message\":\"x\"}", "GET");
        let r = r.unwrap();
        assert_eq!(
            (r.status, r.body.as_slice()),
            (404, &b"{\"message\":\"x\"}"[..])
        );
        let (_, r) = serve(b"HTTP/1.1 204 No Content\r\n\r\n", "DELETE");
        assert_eq!(r.unwrap().status, 204);
        let (_, r) = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", "HEAD");
        assert!(r.unwrap().body.is_empty());
    }

    #[test]
    fn broken_responses_are_errors() {
        let (_, r) = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", "GET");
        assert!(r.is_err());
        let (_, r) = serve(b"SSH-2.0\r\n\r\n", "GET");
        assert!(r.unwrap_err().to_string().contains("not an HTTP"));
        let (_, r) = serve(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "GET",
        );
        assert!(r.unwrap_err().to_string().contains("chunk size"));
        let (_, r) = serve(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n0\r\n\r\n",
            "GET",
        );
        assert!(r.is_err());
    }

    #[test]
    fn a_silent_server_times_out() {
        let (a, _b) = UnixStream::pair().unwrap();
        let until = Instant::now() + Duration::from_millis(200);
        let e = exchange(a, until, "GET", "/_ping").err().unwrap();
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ),
            "{e:?}"
        );
    }
}

//! The little JSON the monitor writes and reads, by hand: serde would add to every
//! monitor's resident size for three flat objects (docs/engine.md).

use oxcart_jsonlog::escape_json_string;

/// A JSON string literal of `s`.
pub fn string(s: &str) -> String {
    let mut v = Vec::with_capacity(s.len() + 2);
    escape_json_string(&mut v, s.as_bytes());
    // The escaper emits ASCII and the valid UTF-8 it was given.
    String::from_utf8_lossy(&v).into_owned()
}

/// The `msg` of the last `"level":"error"` line of a runtime's `--log-format json`
/// log (runc's and oxcart-runtime's; containerd's shim reads it the same way).
pub fn last_error_msg(log: &str) -> Option<String> {
    log.lines().rev().find_map(|line| {
        let fields = string_fields(line)?;
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        (get("level") == Some("error")).then(|| get("msg").map(str::to_owned))?
    })
}

/// The string-valued members of a flat JSON object; other values are skipped.
fn string_fields(line: &str) -> Option<Vec<(String, String)>> {
    let mut p = Parser {
        s: line.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    p.ws();
    p.eat(b'{')?;
    loop {
        p.ws();
        if p.eat(b'}').is_some() {
            return Some(out);
        }
        let key = p.string()?;
        p.ws();
        p.eat(b':')?;
        p.ws();
        if p.peek()? == b'"' {
            out.push((key, p.string()?));
        } else {
            // A number, bool or null: runtimes' log lines have no nested values.
            while !matches!(p.peek()?, b',' | b'}') {
                p.i += 1;
            }
        }
        p.ws();
        if p.eat(b',').is_none() {
            p.eat(b'}')?;
            return Some(out);
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }
    fn hex4(&mut self) -> Option<u32> {
        let h = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
        self.i += 4;
        u32::from_str_radix(h, 16).ok()
    }
    fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let mut out = Vec::new();
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    let ch = match e {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xd800..0xdc00).contains(&hi) {
                                // A surrogate pair: \uD83D\uDE00.
                                self.eat(b'\\')?;
                                self.eat(b'u')?;
                                let lo = self.hex4()?;
                                0x10000 + ((hi - 0xd800) << 10) + (lo.checked_sub(0xdc00)?)
                            } else {
                                hi
                            };
                            char::from_u32(cp).unwrap_or('\u{fffd}')
                        }
                        other => other as char,
                    };
                    let mut b = [0; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                }
                _ => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_log_last_error() {
        let log = concat!(
            "{\"level\":\"warning\",\"msg\":\"w\",\"time\":\"t\"}\n",
            "{\"level\":\"error\",\"msg\":\"first\",\"time\":\"t\"}\n",
            "{\"level\":\"error\",\"msg\":\"exec: \\\"nope\\\": not found \\u003cx\\u003e \\ud83d\\ude00\",\"time\":\"t\"}\n",
            "{\"level\":\"info\",\"msg\":\"later\",\"n\":3}\n",
        );
        assert_eq!(
            last_error_msg(log).unwrap(),
            "exec: \"nope\": not found <x> 😀"
        );
        assert_eq!(last_error_msg("garbage\n"), None);
    }

    #[test]
    fn string_escapes() {
        assert_eq!(string("a\"b\n<"), "\"a\\\"b\\n\\u003c\"");
    }
}

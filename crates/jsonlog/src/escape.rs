//! JSON string escaping byte-for-byte as docker's json-file writer does it (moby's
//! `ffjsonWriteJSONBytesAsString`, the rules of Go's encoding/json with HTML escaping):
//! `"` `\` `\n` `\r` get short escapes, every other control byte and `<` `>` `&` are
//! `\u00XX`, each byte of invalid UTF-8 becomes `\ufffd`, and U+2028/U+2029 are
//! escaped because JavaScript treats them as line ends.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` to `out` as a quoted JSON string, escaped as docker does.
pub fn escape_json_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    let mut rest = s;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                escape_str(out, valid);
                break;
            }
            Err(e) => {
                let (valid, bad) = rest.split_at(e.valid_up_to());
                // Cannot fail: from_utf8 just validated this prefix.
                escape_str(out, std::str::from_utf8(valid).unwrap_or_default());
                // Go's utf8.DecodeRune reports an invalid sequence one byte at a time,
                // so a truncated 3-byte sequence is two U+FFFD, not one.
                out.extend_from_slice(b"\\ufffd");
                rest = &bad[1..];
            }
        }
    }
    out.push(b'"');
}

fn escape_str(out: &mut Vec<u8>, s: &str) {
    // Byte by byte, not char by char (this is the log writer's hot loop): every
    // character Go escapes is ASCII except U+2028 and U+2029, whose UTF-8 is
    // E2 80 A8 / E2 80 A9; `s` is valid UTF-8, so other bytes >= 0x80 are copied.
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (esc_len, code): (usize, u32) = match b {
            b'"' | b'\\' | b'\n' | b'\r' | 0..=0x1f | b'<' | b'>' | b'&' => (1, b as u32),
            0xe2 if bytes.get(i + 1) == Some(&0x80)
                && matches!(bytes.get(i + 2), Some(0xa8) | Some(0xa9)) =>
            {
                (3, 0x2000 | (bytes[i + 2] as u32 - 0xa8 + 0x28))
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => {
                out.extend_from_slice(b"\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(HEX[((code >> shift) & 0xf) as usize]);
                }
            }
        }
        i += esc_len;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &[u8]) -> String {
        let mut v = Vec::new();
        escape_json_string(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn go_escapes() {
        assert_eq!(esc(b"plain text"), r#""plain text""#);
        assert_eq!(esc(b"a\"b\\c\nd\re"), r#""a\"b\\c\nd\re""#);
        // Go has no short escape for tab in this writer: \u0009.
        assert_eq!(esc(b"\t\x00\x1f\x7f"), "\"\\u0009\\u0000\\u001f\x7f\"");
        assert_eq!(esc(b"<a href=x&y>"), r#""\u003ca href=x\u0026y\u003e""#);
        assert_eq!(esc("é€😀".as_bytes()), "\"é€😀\"");
        assert_eq!(esc("a\u{2028}b\u{2029}".as_bytes()), r#""a\u2028b\u2029""#);
    }

    #[test]
    fn invalid_utf8_per_byte() {
        assert_eq!(esc(b"a\xffb"), r#""a\ufffdb""#);
        // Truncated 3-byte sequence then ASCII: one U+FFFD per byte, as Go.
        assert_eq!(esc(b"\xe2\x82A"), r#""\ufffd\ufffdA""#);
        // UTF-16 surrogate encoded in UTF-8 is invalid in Go too.
        assert_eq!(esc(b"\xed\xa0\x80"), r#""\ufffd\ufffd\ufffd""#);
        // What serde_json reads back is the lossy string.
        let v: String = serde_json::from_str(&esc(b"x\xc3")).unwrap();
        assert_eq!(v, "x\u{fffd}");
    }
}

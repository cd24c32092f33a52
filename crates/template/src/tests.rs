//! Unit tests of Go's semantics on JSON data. The expectations come from Go's
//! text/template and fmt documentation and from podman/docker runs (the
//! differential tests in tests/ check the same against the real programs).

use super::*;
use serde_json::json;

fn data() -> Value {
    json!({
        "Id": "0123456789abcdef",
        "Name": "/web",
        "Size": 1987819,
        "Ratio": 0.25,
        "Big": 1000000.0,
        "Null": null,
        "Running": true,
        "Args": ["-c", "echo hi"],
        "Empty": [],
        "Labels": {"a.b": "c", "Zed": "x y"},
        "NoLabels": {},
        "State": {"Status": "running", "Pid": 42, "Health": null},
        "Mounts": [
            {"Source": "/src", "Destination": "/dst", "RW": true},
            {"Source": "/a", "Destination": "/b", "RW": false}
        ],
        "Networks": {"bridge": {"IPAddress": "10.88.0.2"}},
        "Html": "<a&b>",
    })
}

fn r(src: &str) -> String {
    match Template::parse(src).and_then(|t| t.render(&data())) {
        Ok(s) => s,
        Err(e) => panic!("{src:?}: {e}"),
    }
}

fn err(src: &str) -> String {
    match Template::parse(src).and_then(|t| t.render(&data())) {
        Ok(s) => panic!("{src:?} rendered {s:?}, expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn fields_and_missing_values() {
    assert_eq!(r("{{.State.Status}}"), "running");
    assert_eq!(r("{{.State.Pid}}/{{.Size}}"), "42/1987819");
    // Go prints a missing map key as <no value>, a nil interface as <nil>.
    assert_eq!(
        r("{{.Missing}}|{{.State.Missing}}|{{.Missing.Deeper}}"),
        "<no value>|<no value>|<no value>"
    );
    assert_eq!(r("{{.Null}}|{{.State.Health}}"), "<nil>|<nil>");
    assert_eq!(r("{{.Running}} {{.Ratio}} {{.Big}}"), "true 0.25 1e+06");
    assert_eq!(
        r("{{.Args}} {{.Empty}} {{.Labels}} {{.NoLabels}}"),
        "[-c echo hi] [] map[Zed:x y a.b:c] map[]"
    );
    assert_eq!(
        r("{{.Mounts}}"),
        "[map[Destination:/dst RW:true Source:/src] map[Destination:/b RW:false Source:/a]]"
    );
    assert_eq!(r("{{.State}}"), "map[Health:<nil> Pid:42 Status:running]");
    assert!(r("{{.}}").starts_with("map[Args:[-c echo hi] Big:1e+06 Empty:[] Html:<a&b> Id:"));
    assert_eq!(
        r("{{$.Name}}{{with .State}}{{$.Name}}{{.Pid}}{{end}}"),
        "/web/web42"
    );
}

#[test]
fn field_errors_name_the_field() {
    let e = err("{{.State.Health.Status}}");
    assert!(
        e.contains("nil pointer evaluating interface {}.Status"),
        "{e}"
    );
    assert!(e.contains("at <.State.Health.Status>"), "{e}");
    let e = err("{{.Name.Foo}}");
    assert!(e.contains("can't evaluate field Foo in type string"), "{e}");
    let e = err("abc\n  {{.Size.X}}");
    assert!(
        e.starts_with("template: :2:4: executing \"\" at <.Size.X>"),
        "{e}"
    );
}

#[test]
fn control_structures() {
    assert_eq!(r("{{if .Running}}up{{else}}down{{end}}"), "up");
    assert_eq!(
        r("{{if .Empty}}a{{else if .Null}}b{{else if .Args}}c{{else}}d{{end}}"),
        "c"
    );
    assert_eq!(r("{{if not .Running}}a{{else if eq .Size 1}}b{{end}}"), "");
    assert_eq!(
        r("{{with .State}}{{.Status}}{{else}}none{{end}}"),
        "running"
    );
    assert_eq!(
        r("{{with .Missing}}x{{else with .Labels}}{{index . \"a.b\"}}{{end}}"),
        "c"
    );
    assert_eq!(
        r("{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}"),
        "/src:/dst /a:/b "
    );
    assert_eq!(
        r("{{range $i, $m := .Mounts}}{{$i}}={{$m.RW}};{{end}}"),
        "0=true;1=false;"
    );
    // Maps range in sorted key order.
    assert_eq!(
        r("{{range $k, $v := .Labels}}{{$k}}={{$v}},{{end}}"),
        "Zed=x y,a.b=c,"
    );
    assert_eq!(r("{{range .Labels}}{{.}},{{end}}"), "x y,c,");
    assert_eq!(r("{{range .Empty}}x{{else}}empty{{end}}"), "empty");
    // docker's nil slices are JSON null: zero iterations, no error.
    assert_eq!(
        r("{{range .Null}}x{{else}}none{{end}}{{range .Missing}}x{{end}}"),
        "none"
    );
    assert_eq!(r("{{range 3}}{{.}}{{end}}"), "012");
    assert_eq!(
        r("{{range .Args}}{{if eq . \"-c\"}}{{continue}}{{end}}{{.}}{{end}}"),
        "echo hi"
    );
    assert_eq!(r("{{range .Args}}{{break}}{{.}}{{end}}done"), "done");
    assert!(err("{{range .Name}}{{end}}").contains("range can't iterate over /web"));
}

#[test]
fn variables_and_scopes() {
    assert_eq!(r("{{$x := .Name}}{{$x}}"), "/web");
    assert_eq!(r("{{$x := 1}}{{$x = 2}}{{$x}}"), "2");
    assert_eq!(
        r("{{$x := 1}}{{range .Args}}{{$x = .}}{{end}}{{$x}}"),
        "echo hi"
    );
    assert_eq!(r("{{if $s := .State}}{{$s.Pid}}{{end}}"), "42");
    let e = err("{{if .Running}}{{$x := 1}}{{end}}{{$x}}");
    assert!(e.contains("undefined variable \"$x\""), "{e}");
    assert!(err("{{$y = 1}}").contains("undefined variable"));
}

#[test]
fn trim_markers_and_comments() {
    assert_eq!(r("a  {{- .State.Pid -}}  \n b"), "a42b");
    assert_eq!(r("a {{-3}} b"), "a -3 b");
    assert_eq!(r("x {{/* note */}} y"), "x  y");
    assert_eq!(r("x {{- /* note */ -}} y"), "xy");
    assert!(err("{{/* unterminated }}").contains("unclosed comment"));
    assert!(err("{{/* a */ .X}}").contains("comment ends before closing delimiter"));
}

#[test]
fn literals() {
    assert_eq!(r(r#"{{"a\tb\u00e9\x41"}}|{{`raw\n`}}"#), "a\tbéA|raw\\n");
    assert_eq!(
        r("{{'a'}} {{0x10}} {{0o17}} {{0b101}} {{1_000}} {{-2}} {{1.5}} {{1e3}} {{true}}"),
        "97 16 15 5 1000 -2 1.5 1000 true"
    );
    assert_eq!(r("{{print nil}}"), "<nil>");
    assert!(err("{{nil}}").contains("nil is not a command"));
    assert!(err("{{\"a\" 1}}").contains("can't give argument to non-function"));
}

#[test]
fn pipelines_and_parentheses() {
    assert_eq!(r("{{.Name | printf \"%s!\" | upper}}"), "/WEB!");
    assert_eq!(r("{{.Args | len}}"), "2");
    assert_eq!(r("{{(index .Networks \"bridge\").IPAddress}}"), "10.88.0.2");
    assert_eq!(r("{{(index .Mounts 1).Source}}"), "/a");
    assert_eq!(r("{{len (split .Id \"5\")}}"), "2");
}

#[test]
fn comparisons() {
    assert_eq!(
        r("{{eq .State.Status \"running\"}} {{eq .Size 1 1987819}} {{ne 1 2}}"),
        "true true true"
    );
    assert_eq!(
        r("{{lt 1 2}} {{le 2 2}} {{gt 1.5 2.5}} {{ge \"b\" \"a\"}} {{lt -1 1}}"),
        "true true false true true"
    );
    assert_eq!(
        r("{{eq .Null \"x\"}} {{eq .Null .Missing}} {{eq .Running true}}"),
        "false true true"
    );
    assert!(err("{{eq .Size 1.5}}").contains("incompatible types for comparison"));
    assert!(err("{{lt true false}}").contains("invalid type for comparison"));
    assert!(err("{{eq .Args .Args}}").contains("non-comparable"));
}

#[test]
fn and_or_not_are_lazy_and_return_values() {
    assert_eq!(
        r("{{and 1 \"x\"}} {{and 0 1}} {{or \"\" 0 \"z\"}} {{or 0 \"\"}}"),
        "x 0 z "
    );
    // The out-of-range index is never evaluated.
    assert_eq!(
        r("{{and .Null (index .Args 9)}}|{{or .Running (index .Args 9)}}"),
        "<nil>|true"
    );
    assert_eq!(
        r("{{not .Empty}} {{not .Args}} {{not .Missing}}"),
        "true false true"
    );
}

#[test]
fn builtins() {
    assert_eq!(
        r("{{len .Name}} {{len .Args}} {{len .Labels}} {{len .Null}}"),
        "4 2 2 0"
    );
    assert!(err("{{len .Size}}").contains("len of type int"));
    assert_eq!(r("{{index .Labels \"a.b\"}}|{{index .Labels \"nope\"}}|{{index .Args 1}}|{{index .Name 1}}"), "c||echo hi|119");
    // Zero value of a map that is not all strings: nil.
    assert_eq!(
        r("{{index .Networks \"none\"}}|{{index .Null \"k\"}}|"),
        "<nil>||"
    );
    assert!(err("{{index .Args 5}}").contains("index out of range: 5"));
    assert_eq!(
        r("{{slice .Id 0 12}} {{slice .Args 1}} {{slice .Name 1}}"),
        "0123456789ab [echo hi] web"
    );
    assert!(err("{{slice .Id 5 2}}").contains("invalid slice index"));
    assert_eq!(r("{{print 1 2 \"a\" \"b\" 3 .Running}}"), "1 2ab3 true");
    assert_eq!(r("{{println .Name 3}}"), "/web 3\n");
    assert_eq!(r("{{print .Missing}} {{json .Missing}}"), "<nil> null");
}

#[test]
fn printf_verbs() {
    assert_eq!(
        r("{{printf \"%5s|%-5s|%.2s|%q\" \"ab\" \"ab\" \"abc\" \"a\\\"b\"}}"),
        "   ab|ab   |ab|\"a\\\"b\""
    );
    assert_eq!(
        r("{{printf \"%d|%5d|%-5d|%05d|%+d|%x|%X|%o|%b|%#x\" 42 42 42 -42 42 255 255 8 5 255}}"),
        "42|   42|42   |-0042|+42|ff|FF|10|101|0xff"
    );
    assert_eq!(r("{{printf \"%f|%.2f|%6.2f|%e|%.3e|%g|%g|%G\" 1.5 3.14159 3.14159 123.456 0.5 1e6 0.000012 1e-7}}"), "1.500000|3.14|  3.14|1.234560e+02|5.000e-01|1e+06|1.2e-05|1E-07");
    assert_eq!(
        r("{{printf \"%t|%v|%v|%c|%q\" true .Args .Labels 65 65}}"),
        "true|[-c echo hi]|map[Zed:x y a.b:c]|A|'A'"
    );
    assert_eq!(
        r("{{printf \"%s|%d\" .Args .Size}}"),
        "[-c echo hi]|1987819"
    );
    assert_eq!(
        r("{{printf \"%d %s\" .Name}}"),
        "%!d(string=/web) %!s(MISSING)"
    );
    assert_eq!(r("{{printf \"%d\" 1 \"x\"}}"), "1%!(EXTRA string=x)");
    assert_eq!(
        r("{{printf \"%s\" .Null}} {{printf \"100%%\"}}"),
        "%!s(<nil>) 100%"
    );
    assert_eq!(
        r("{{printf \"%T %T %T %T\" .Name .Size .Ratio .Args}}"),
        "string int float64 []interface {}"
    );
    assert_eq!(
        r("{{printf \"%s|%d\" .Labels .State}}"),
        "map[Zed:x y a.b:c]|map[%!d(string=Health):%!d(<nil>) %!d(string=Pid):42 %!d(string=Status):%!d(string=running)]"
    );
    assert_eq!(
        r("{{printf \"%x\" \"hi\"}} {{printf \"%6.1f|\" -2.25}}"),
        "6869   -2.2|"
    );
}

#[test]
fn go_float_printing() {
    use crate::gofmt::{float_json, float_v};
    for (f, v, j) in [
        (1e6, "1e+06", "1000000"),
        (123456.0, "123456", "123456"),
        (1234567.0, "1.234567e+06", "1234567"),
        (0.0001, "0.0001", "0.0001"),
        (0.00001, "1e-05", "0.00001"),
        (1e-7, "1e-07", "1e-7"),
        (1e21, "1e+21", "1e+21"),
        (1e20, "1e+20", "100000000000000000000"),
        (-0.5, "-0.5", "-0.5"),
        (3.0, "3", "3"),
        (0.0, "0", "0"),
        (0.1 + 0.2, "0.30000000000000004", "0.30000000000000004"),
    ] {
        assert_eq!((float_v(f).as_str(), float_json(f).as_str()), (v, j), "{f}");
    }
}

#[test]
fn docker_functions() {
    assert_eq!(r("{{json .Labels}}"), r#"{"Zed":"x y","a.b":"c"}"#);
    assert_eq!(
        r("{{json .Html}} {{json .Ratio}} {{json .Big}} {{json .Null}}"),
        r#""<a&b>" 0.25 1000000 null"#
    );
    assert_eq!(
        r("{{json \"\\n\\x01\\u2028\\\\\"}}"),
        r#""\n\u0001\u2028\\""#
    );
    assert_eq!(
        r("{{json .Mounts}}"),
        r#"[{"Destination":"/dst","RW":true,"Source":"/src"},{"Destination":"/b","RW":false,"Source":"/a"}]"#
    );
    assert_eq!(
        r("{{join .Args \" \"}}|{{join .Null \",\"}}|{{join .Empty \",\"}}"),
        "-c echo hi||"
    );
    assert!(err("{{join .Mounts \",\"}}").contains("expected []string"));
    assert_eq!(
        r("{{split \"a,b,\" \",\"}} {{len (split \"\" \",\")}} {{split \"ab\" \"\"}}"),
        "[a b ] 1 [a b]"
    );
    assert_eq!(
        r("{{upper .Name}} {{lower \"MiXeD\"}} {{title \"hello wORLD foo_bar x-y é-é\"}}"),
        "/WEB mixed Hello WORLD Foo_bar X-Y É-É"
    );
    assert_eq!(r("[{{pad .Name 1 2}}][{{pad \"\" 1 1}}]"), "[ /web  ][]");
    assert_eq!(
        r("{{truncate .Id 4}}|{{truncate .Name 10}}|{{truncate \"日本\" 4}}"),
        "0123|/web|日"
    );
    assert!(err("{{upper .Size}}").contains("wrong type for value; expected string; got int"));
    assert!(err("{{upper .Missing}}").contains("invalid value; expected string"));
    assert!(err("{{pad .Name \"1\" 1}}").contains("expected int"));
}

#[test]
fn unsupported_constructs_are_named() {
    assert!(err("{{define \"x\"}}{{end}}").contains("{{define}} is not supported"));
    assert!(err("{{template \"x\" .}}").contains("{{template}} is not supported"));
    assert!(err("{{html .Name}}").contains("function \"html\" is not supported"));
    assert!(err("{{nosuch .Name}}").contains("function \"nosuch\" not defined"));
}

#[test]
fn parse_errors() {
    assert!(err("{{.Name").contains("unclosed action"));
    assert!(err("{{if .Running}}x").contains("unexpected EOF"));
    assert!(err("{{end}}").contains("unexpected {{end}}"));
    assert!(err("{{else}}").contains("unexpected {{else}}"));
    assert!(err("{{if}}{{end}}").contains("missing value for if"));
    assert!(err("{{}}").contains("missing value for command"));
    assert!(err("{{break}}").contains("outside {{range}}"));
    assert!(err("{{(.Name}}").contains("unclosed left paren"));
    assert!(err("{{.Name)}}").contains("unexpected right paren"));
    assert!(err("{{\"abc}}").contains("unterminated quoted string"));
    assert!(err("{{.Name | }}").contains("missing command in pipeline"));
    assert!(err("{{range .A}}{{else if .B}}{{end}}").contains("inside {{range}}"));
    let e = err("line1\nline2 {{.X | nosuch}}");
    assert!(e.starts_with("template: :2:"), "{e}");
}

#[test]
fn label_methods_index_their_map() {
    // docker's `{{.Label "key"}}` on ps/images/volumes/networks.
    assert_eq!(
        r("{{.Labels \"a.b\"}}|{{.Labels \"nope\"}}|{{.Null \"k\"}}|"),
        "c|||"
    );
    assert!(err("{{.Name \"x\"}}").contains("Name is not a method but has arguments"));
}

#[test]
fn formatter_tables() {
    let rows = [
        json!({"ID": "0123456789ab", "Names": "web", "Status": "Up 2 minutes", "Labels": {"a": "<b>"}}),
        json!({"ID": "ba9876543210", "Names": "database-primary", "Status": "Exited (0)", "Labels": {}}),
    ];
    let headers =
        json!({"ID": "CONTAINER ID", "Names": "NAMES", "Status": "STATUS", "Labels": "LABELS"});
    let f = Formatter::new("table {{.ID}}\\t{{upper .Names}}\\t{{.Status}}").unwrap();
    assert!(f.is_table());
    assert_eq!(
        f.render(&rows, &headers).unwrap(),
        "CONTAINER ID   NAMES              STATUS\n\
         0123456789ab   WEB                Up 2 minutes\n\
         ba9876543210   DATABASE-PRIMARY   Exited (0)\n"
    );
    // No rows: still the header. `table` needs no space after it.
    let f = Formatter::new("table{{.Names}}\\t{{pad .ID 1 1}}").unwrap();
    assert_eq!(
        f.render(&[], &headers).unwrap(),
        "NAMES      CONTAINER ID \n"
    );
    // Not a table: the escapes still become tabs and newlines, nothing is aligned.
    let f = Formatter::new("  {{.Names}}\\t{{.ID}}  ").unwrap();
    assert!(!f.is_table());
    assert_eq!(
        f.render(&rows, &headers).unwrap(),
        "web\t0123456789ab\ndatabase-primary\tba9876543210\n"
    );
    // `json` is {{json .}}, and a row's JSON escapes HTML characters; a field's does not.
    let f = Formatter::new("json").unwrap();
    let out = f.render(&rows[..1], &headers).unwrap();
    assert!(out.contains(r#""Labels":{"a":"\u003cb\u003e"}"#), "{out}");
    let f = Formatter::new("{{json .Labels}}").unwrap();
    assert_eq!(f.render(&rows[..1], &headers).unwrap(), "{\"a\":\"<b>\"}\n");
    assert!(Formatter::new("table {{.ID").is_err());
    // A header that fails part-way prints what it rendered, as docker's does.
    let f = Formatter::new("table {{.Names}}\\t{{.Names.X}}\\t{{.ID}}").unwrap();
    assert!(f.render(&[], &headers).unwrap().starts_with("NAMES"));
}

#[test]
fn header_row_keeps_header_names() {
    let t = Template::parse("{{upper .Names}}|{{json .ID}}|{{truncate .ID 2}}|{{pad .Names 1 0}}|{{.Label \"x\"}}|{{.Nope}}").unwrap();
    let headers = json!({"ID": "CONTAINER ID", "Names": "NAMES", "Label": "LABEL"});
    assert_eq!(
        t.render_header(&headers).unwrap(),
        "NAMES|CONTAINER ID|CONTAINER ID| NAMES|LABEL|<no value>"
    );
}

#[test]
fn tabwriter_alignment() {
    // Minimum width 10, padding 3, the last cell of a line unpadded.
    assert_eq!(
        align("a\tb\tc\nlonger-cell-here\tb\tc\n"),
        "a                  b         c\nlonger-cell-here   b         c\n"
    );
    // A trailing tab makes the last column a padded column too.
    assert_eq!(align("a\tb\t\n"), "a         b         \n");
    // A line without tabs ends the columns above it: the block after it aligns anew.
    assert_eq!(
        align("aaaaaaaaaaaaa\tb\nplain\nx\ty\n"),
        "aaaaaaaaaaaaa   b\nplain\nx         y\n"
    );
    // Lines with fewer cells only take part in the columns they have.
    assert_eq!(align("a\tb\tc\nd\n"), "a         b         c\nd\n");
    // No trailing newline: the last line stays unterminated.
    assert_eq!(align("a\tb"), "a         b");
    assert_eq!(align(""), "");
    // Wide characters count two columns, as docker's go-runewidth does.
    assert_eq!(align("日本語\tx\nab\ty\n"), "日本語    x\nab        y\n");
    assert_eq!(
        align_rows(&[vec!["A", "B"], vec!["ccc", "d"]]),
        "A         B\nccc       d\n"
    );
}

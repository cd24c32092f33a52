//! Differential test against docker's own CLI formatter: `docker context ls`
//! and `docker context inspect` render `--format` without a daemon, through
//! docker/cli's `formatter` package (table prefix, header functions, its
//! tabwriter) and `templates` package (docker's functions), built with a
//! current Go. Contexts live in a private DOCKER_CONFIG removed at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use oxcart_template::{Formatter, Template};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

struct Config(PathBuf);

impl Config {
    fn new() -> Config {
        let dir =
            std::env::temp_dir().join(format!("oxcart-template-docker-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = Config(dir);
        // Wide characters (docker's tabwriter counts them as two columns), HTML
        // characters (escaped by json.Marshal of a row, not by `json` of a field),
        // an empty description and a long name.
        for (name, desc, host) in [
            ("cjk", "日本語の説明", "unix:///tmp/oxcart-none.sock"),
            ("html-ctx", "x <y> & \"z\"", "unix:///tmp/oxcart-none.sock"),
            ("a-much-longer-context-name", "", "tcp://127.0.0.1:1"),
        ] {
            let out = cfg.docker(&[
                "context",
                "create",
                name,
                "--description",
                desc,
                "--docker",
                &format!("host={host}"),
            ]);
            assert!(
                out.status.success(),
                "docker context create: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        cfg
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .env("DOCKER_CONFIG", &self.0)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .args(args)
            .output()
            .expect("docker's CLI must be installed for the differential test")
    }

    fn stdout(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Config {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `docker context ls` formats: tables (header row from the header map,
/// docker's HeaderFunctions, tabwriter 10/1/3) and plain rows.
const LIST: &[&str] = &[
    "table {{.Name}}\\t{{.Description}}\\t{{.DockerEndpoint}}",
    "table {{.Name}}\\t{{.Description}}\\t{{.DockerEndpoint}}\\t{{.Error}}",
    "table {{.Current}}\\t{{.Name}}\\t{{upper .Description}}\\t{{json .Name}}\\t{{pad .Name 1 1}}|{{truncate .Name 3}}|{{.Error}}",
    "table {{lower .Name}}\\t{{title .Description}}\\t{{split .DockerEndpoint \":\"}}\\t{{join (split .Name \"-\") \"+\"}}",
    "table {{.Name}}",
    "table {{.Description}}\\t{{.Name}}\\t",
    "table{{.Name}}\\t{{.Current}}",
    "  {{.Name}}\\t{{.DockerEndpoint}}  ",
    "{{json .}}",
    "json",
    "{{.Name}}: {{json .Description}} {{if .Current}}*{{end}}\\n--",
    "{{printf \"%-30s|%5t\" .Name .Current}}",
    "{{len .Description}} {{slice .Name 0 2}}",
];

const INSPECT: &[&str] = &[
    "{{.Name}} {{json .Endpoints}}",
    "{{range $k, $v := .Endpoints}}{{$k}}={{$v.Host}} {{$v.SkipTLSVerify}}{{end}}",
    "{{.Endpoints.docker.Host}}|{{.Endpoints.nope}}|{{.TLSMaterial}}|{{len .TLSMaterial}}",
    "{{range 3}}{{.}}{{end}} {{range $i := 2}}[{{$i}}]{{end}}",
    "{{json \"\\b\\f\\u2028<&>\"}} {{json 1e21}} {{json 0.000001}} {{json 1e-7}}",
    "{{print 1e6 100000.0 1e-5 -2.5}} {{printf \"%v|%6.2f|%e|%g\" 1e21 3.14159 0.5 1e-7}}",
    "{{with .Storage}}{{if .MetadataPath}}has-meta{{end}}{{end}}",
    "{{- range .Endpoints -}} {{ .Host }} {{- end -}}",
    "{{if eq .Name \"x\" \"cjk\"}}one of{{else if .Name}}named{{else}}none{{end}}",
    "{{with .TLSMaterial}}a{{else with .Endpoints.docker}}{{.Host}}{{else}}c{{end}}",
    "{{range $i := 10}}{{if ge $i 3}}{{break}}{{end}}{{$i}}{{end}}",
    "{{printf \"%5v|%-4v|%x|%08.3f|%+.2e|%3c|%-6q|%v\" 1.5 true -255 -3.14159 12345.678 66 \"q\" .Endpoints.docker.Host}}",
    "{{printf \"%s|%v\" .TLSMaterial .Endpoints.nope}} {{.Name | len | printf \"%03d\"}}",
    "{{title .Name}} {{upper (slice .Name 1)}} {{split .Name \"-\"}} {{json (split .Name \"-\")}}",
];

// Not compared: values that are Go structs in docker (`.Endpoints.docker`),
// which fmt prints as `{unix:///… false}`; JSON objects print as maps.

/// Formats both must reject.
const INSPECT_FAIL: &[&str] = &[
    "{{.Name.Foo}}",
    "{{upper 1}}",
    "{{eq .Name 1}}",
    "{{index .Endpoints.docker.Host 100}}",
    "{{template \"x\"}}",
    "{{range .Name}}{{end}}",
    "{{len 3}}",
];

#[test]
fn formats_like_dockers_cli() {
    if std::env::var_os("OXCART_V2_LANE").is_some() {
        eprintln!("formats_like_dockers_cli: skipped in the v2 lane: no docker CLI there");
        return;
    }
    let cfg = Config::new();
    // Rows as docker serialises them; `Current` marks the current context.
    let rows: Vec<Value> = cfg
        .stdout(&["context", "ls", "--format", "{{json .}}"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4, "default + 3 contexts: {rows:?}");
    // docker's header map for contexts has no `Current`: its header prints <no value>.
    let headers = json!({
        "Name": "NAME", "Description": "DESCRIPTION", "DockerEndpoint": "DOCKER ENDPOINT", "Error": "ERROR",
    });
    let mut failures = Vec::new();
    for format in LIST {
        let want = cfg.stdout(&["context", "ls", "--format", format]);
        let got = Formatter::new(format).and_then(|f| f.render(&rows, &headers));
        if got.as_deref() != Ok(want.as_str()) {
            failures.push(format!(
                "ls {format:?}\n   docker: {want:?}\n   oxcart: {got:?}"
            ));
        }
    }
    for name in ["cjk", "html-ctx"] {
        let data: Value = serde_json::from_str(&cfg.stdout(&["context", "inspect", name])).unwrap();
        for format in INSPECT {
            // docker inspect prints each result and a newline.
            let want = cfg.stdout(&["context", "inspect", "--format", format, name]);
            let got = Template::parse(format)
                .and_then(|t| t.render(&data[0]))
                .map(|s| s + "\n");
            if got.as_deref() != Ok(want.as_str()) {
                failures.push(format!(
                    "inspect {name} {format:?}\n   docker: {want:?}\n   oxcart: {got:?}"
                ));
            }
        }
    }
    let data = json!({"Name": "cjk", "Endpoints": {"docker": {"Host": "h"}}});
    for format in INSPECT_FAIL {
        let out = cfg.docker(&["context", "inspect", "--format", format, "cjk"]);
        let got = Template::parse(format).and_then(|t| t.render(&data));
        if out.status.success() || got.is_ok() {
            failures.push(format!(
                "inspect {format:?} should fail\n   docker: {out:?}\n   oxcart: {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

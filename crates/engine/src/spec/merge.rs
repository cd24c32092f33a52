//! docker's merge of an image's config into the container's at create
//! (moby `daemon/commit.go` `merge`).

use crate::types::Config;

/// docker's default PATH (`system.DefaultPathEnv` for Linux).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The `config` object of an image's config JSON (the whole document is what the
/// image store keeps). Its field names are docker's `Config`'s; an image without one
/// yields the empty config.
pub fn image_config_from_json(image_config: &[u8]) -> Result<Config, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Doc {
        #[serde(default)]
        config: Option<Config>,
    }
    let doc: Doc = serde_json::from_slice(image_config)?;
    Ok(doc.config.unwrap_or_default())
}

/// Merge the image's config into what the user asked for, as docker does at create:
/// the user's value wins field by field; Env merged by key (the user's first, then the
/// image's keys the user did not give), Labels, ExposedPorts and Volumes merged; a user
/// Entrypoint drops the image's Cmd unless the user also gave a Cmd; Healthcheck merged
/// field by field; PATH defaulted when neither has one (docker adds it at start; we
/// record it so `inspect` shows the PATH the process gets).
pub fn merge_image_config(image: &Config, user: Config) -> Config {
    let mut c = user;
    if c.user.is_empty() {
        c.user = image.user.clone();
    }
    c.exposed_ports = merge_sets(c.exposed_ports.take(), image.exposed_ports.as_ref());
    c.volumes = merge_sets(c.volumes.take(), image.volumes.as_ref());
    c.env = Some(merge_env(
        c.env.take().unwrap_or_default(),
        image.env.as_deref(),
    ));
    for (k, v) in &image.labels {
        c.labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if c.entrypoint.as_deref().unwrap_or_default().is_empty() {
        if c.cmd.as_deref().unwrap_or_default().is_empty() {
            c.cmd = image.cmd.clone();
            c.args_escaped = image.args_escaped;
        }
        if c.entrypoint.is_none() {
            c.entrypoint = image.entrypoint.clone();
        }
    }
    merge_healthcheck(&mut c, image);
    if c.working_dir.is_empty() {
        c.working_dir = image.working_dir.clone();
    }
    if c.stop_signal.is_empty() {
        c.stop_signal = image.stop_signal.clone();
    }
    if c.shell.is_none() {
        c.shell = image.shell.clone();
    }
    if c.on_build.is_none() {
        c.on_build = image.on_build.clone();
    }
    c
}

fn merge_sets(
    user: Option<crate::types::EmptySet>,
    image: Option<&crate::types::EmptySet>,
) -> Option<crate::types::EmptySet> {
    match (user, image) {
        (None, None) => None,
        (None, Some(i)) => Some(i.clone()),
        (Some(u), None) => Some(u),
        (Some(mut u), Some(i)) => {
            for (k, v) in i {
                u.entry(k.clone()).or_insert_with(|| v.clone());
            }
            Some(u)
        }
    }
}

fn env_key(e: &str) -> &str {
    e.split_once('=').map_or(e, |(k, _)| k)
}

fn merge_env(mut user: Vec<String>, image: Option<&[String]>) -> Vec<String> {
    for ie in image.unwrap_or_default() {
        if !user.iter().any(|u| env_key(u) == env_key(ie)) {
            user.push(ie.clone());
        }
    }
    if !user.iter().any(|e| env_key(e) == "PATH") {
        user.push(format!("PATH={DEFAULT_PATH}"));
    }
    user
}

fn merge_healthcheck(c: &mut Config, image: &Config) {
    let Some(ih) = &image.healthcheck else {
        return;
    };
    let Some(h) = &mut c.healthcheck else {
        c.healthcheck = Some(ih.clone());
        return;
    };
    if h.test.as_deref().unwrap_or_default().is_empty() {
        h.test = ih.test.clone();
    }
    for (mine, theirs) in [
        (&mut h.interval, ih.interval),
        (&mut h.timeout, ih.timeout),
        (&mut h.start_period, ih.start_period),
        (&mut h.start_interval, ih.start_interval),
        (&mut h.retries, ih.retries),
    ] {
        if *mine == 0 {
            *mine = theirs;
        }
    }
}

/// docker's `ReplaceOrAppendEnvValues`: each override replaces the default with its
/// key or is appended; an override without `=` removes the key (`-e FOO` when FOO is
/// not set in the caller's environment).
pub(crate) fn replace_or_append_env(defaults: Vec<String>, overrides: &[String]) -> Vec<String> {
    let mut out: Vec<Option<String>> = defaults.into_iter().map(Some).collect();
    for o in overrides {
        let key = env_key(o);
        let pos = out
            .iter()
            .position(|d| d.as_deref().is_some_and(|d| env_key(d) == key));
        match (pos, o.contains('=')) {
            (Some(i), true) => out[i] = Some(o.clone()),
            (Some(i), false) => out[i] = None,
            (None, true) => out.push(Some(o.clone())),
            (None, false) => {}
        }
    }
    out.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::HealthConfig;

    fn v(s: &[&str]) -> Option<Vec<String>> {
        Some(s.iter().map(|s| s.to_string()).collect())
    }

    fn image() -> Config {
        let mut c = Config {
            env: v(&["PATH=/img/bin", "A=image", "B=image"]),
            cmd: v(&["img-cmd"]),
            entrypoint: v(&["img-ep"]),
            working_dir: "/img".into(),
            user: "alice".into(),
            stop_signal: "SIGQUIT".into(),
            healthcheck: Some(HealthConfig {
                test: v(&["CMD", "true"]),
                interval: 5,
                retries: 3,
                ..Default::default()
            }),
            ..Default::default()
        };
        c.labels.insert("l".into(), "image".into());
        c.labels.insert("m".into(), "image".into());
        c.exposed_ports = Some([("80/tcp".to_string(), Default::default())].into());
        c
    }

    #[test]
    fn user_values_win_and_image_fills_the_rest() {
        let mut user = Config {
            env: v(&["A=user", "C=user"]),
            ..Default::default()
        };
        user.labels.insert("l".into(), "user".into());
        user.exposed_ports = Some([("53/udp".to_string(), Default::default())].into());
        let m = merge_image_config(&image(), user);
        assert_eq!(m.env, v(&["A=user", "C=user", "PATH=/img/bin", "B=image"]));
        assert_eq!(m.labels["l"], "user");
        assert_eq!(m.labels["m"], "image");
        let ports: Vec<_> = m.exposed_ports.expect("ports").into_keys().collect();
        assert_eq!(ports, ["53/udp", "80/tcp"]);
        assert_eq!(m.cmd, v(&["img-cmd"]));
        assert_eq!(m.entrypoint, v(&["img-ep"]));
        assert_eq!(m.working_dir, "/img");
        assert_eq!(m.user, "alice");
        assert_eq!(m.stop_signal, "SIGQUIT");
        assert_eq!(m.healthcheck.expect("hc").retries, 3);
    }

    #[test]
    fn entrypoint_and_cmd_rules() {
        // A user Entrypoint drops the image's Cmd.
        let m = merge_image_config(
            &image(),
            Config {
                entrypoint: v(&["sh"]),
                ..Default::default()
            },
        );
        assert_eq!((m.entrypoint, m.cmd), (v(&["sh"]), None));
        // ...unless the user gave a Cmd too.
        let m = merge_image_config(
            &image(),
            Config {
                entrypoint: v(&["sh"]),
                cmd: v(&["-c", "x"]),
                ..Default::default()
            },
        );
        assert_eq!((m.entrypoint, m.cmd), (v(&["sh"]), v(&["-c", "x"])));
        // A user Cmd alone keeps the image's Entrypoint.
        let m = merge_image_config(
            &image(),
            Config {
                cmd: v(&["x"]),
                ..Default::default()
            },
        );
        assert_eq!((m.entrypoint, m.cmd), (v(&["img-ep"]), v(&["x"])));
        // `--entrypoint ""` ([""]) clears the image's and does not inherit its Cmd.
        let m = merge_image_config(
            &image(),
            Config {
                entrypoint: v(&[""]),
                ..Default::default()
            },
        );
        assert_eq!((m.entrypoint, m.cmd), (v(&[""]), None));
    }

    #[test]
    fn default_path_and_healthcheck_fields() {
        let img = Config {
            healthcheck: Some(HealthConfig {
                test: v(&["CMD", "true"]),
                interval: 5,
                timeout: 7,
                ..Default::default()
            }),
            ..Default::default()
        };
        let user = Config {
            healthcheck: Some(HealthConfig {
                interval: 9,
                ..Default::default()
            }),
            ..Default::default()
        };
        let m = merge_image_config(&img, user);
        assert_eq!(m.env, Some(vec![format!("PATH={DEFAULT_PATH}")]));
        let h = m.healthcheck.expect("hc");
        assert_eq!((h.test, h.interval, h.timeout), (v(&["CMD", "true"]), 9, 7));
    }

    #[test]
    fn env_without_value_unsets() {
        let out = replace_or_append_env(
            vec!["PATH=/bin".into(), "HOSTNAME=h".into()],
            &[
                "HOSTNAME".into(),
                "A=1".into(),
                "PATH=/x".into(),
                "NOPE".into(),
            ],
        );
        assert_eq!(out, ["PATH=/x", "A=1"]);
    }

    #[test]
    fn config_from_image_json() {
        let c = image_config_from_json(
            br#"{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"Cmd":["sh"],"WorkingDir":"/w"}}"#,
        )
        .expect("parse");
        assert_eq!((c.cmd, c.working_dir), (v(&["sh"]), "/w".into()));
        let c = image_config_from_json(br#"{"architecture":"amd64","os":"linux"}"#).expect("parse");
        assert_eq!(c, Config::default());
    }
}

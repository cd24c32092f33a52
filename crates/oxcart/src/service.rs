//! `oxcart system service`: docker's Engine API over this engine (crates/api). The
//! socket is root-equivalent: whoever can connect can run privileged containers.

use crate::Ctx;
use anyhow::{Context, Result};

pub fn cmd_service(ctx: &Ctx, time: u64, group: Option<String>, uri: Option<&str>) -> Result<()> {
    let listen = oxcart_api::Listen::parse(uri)?;
    if let oxcart_api::Listen::Tcp(a) = &listen {
        eprintln!(
            "WARNING: serving the API on tcp://{a} without TLS or authentication: any local user can reach it and it is root-equivalent"
        );
    }
    let cli = ctx.cli;
    let opts = oxcart_api::ServiceOptions {
        listen,
        idle: (time > 0).then(|| std::time::Duration::from_secs(time)),
        group,
        layout: oxcart_engine::Layout::new(&cli.root, &cli.runroot),
        config_file: cli.config.clone(),
        pull: oxcart_image::pull::PullOptions {
            platform: None,
            insecure: crate::insecure(cli),
            credentials: crate::credential_store(cli),
            jobs: 3,
        },
    };
    // The engine's config is checked now, so a bad file fails here and not per request.
    oxcart_engine::config::EngineConfig::load(cli.config.as_deref())?;
    oxcart_api::serve(opts).context("oxcart system service")?;
    Ok(())
}

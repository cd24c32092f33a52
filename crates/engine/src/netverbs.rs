//! The network verbs' effects beyond the network database — their events, and the
//! resolv.conf switch of a running container joining a user network — shared by the
//! CLI (`oxcart network …`) and the API (`/networks/…`), so both journal the same
//! events and leave a container in the same state.

use crate::engine::Engine;
use crate::error::Result;
use crate::network::{CreateNetwork, Network, Networks, DEFAULT_NETWORK};
use crate::record::Record;

impl Engine {
    /// docker's `network create`/`destroy` events: the id, with `name` and `type`.
    fn emit_network(&self, action: &str, n: &Network) {
        self.emit(
            "network",
            action,
            &n.id,
            &[("name", &n.name), ("type", "bridge")],
        );
    }

    pub fn create_network(&self, nets: &mut Networks, req: CreateNetwork) -> Result<Network> {
        let n = nets.create(req)?;
        self.emit_network("create", &n);
        Ok(n)
    }

    /// `network rm` of one network (by name, id or prefix).
    pub fn remove_network(&self, nets: &mut Networks, key: &str) -> Result<Network> {
        let gone = nets.remove(key)?;
        nets.release_idle()?;
        self.emit_network("destroy", &gone);
        Ok(gone)
    }

    /// `network prune`: every network but docker's `bridge` that no container is on
    /// and whose labels pass `keep`; their names.
    pub fn prune_networks(
        &self,
        nets: &mut Networks,
        keep: &dyn Fn(&Network) -> bool,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for n in nets.list()? {
            if n.name != DEFAULT_NETWORK && keep(&n) && nets.containers_on(&n.id)?.is_empty() {
                nets.remove(&n.id)?;
                self.emit_network("destroy", &n);
                out.push(n.name);
            }
        }
        nets.release_idle()?;
        Ok(out)
    }

    /// `network connect` of a container (running or not).
    pub fn connect_network(
        &self,
        nets: &mut Networks,
        rec: &Record,
        network: &str,
        aliases: &[String],
    ) -> Result<Network> {
        let n = nets.connect(&rec.id, &rec.host_config.network_mode, network, aliases)?;
        self.emit_net_connect("connect", &rec.id, &n);
        // A running container on the default bridge joining a user network now asks
        // the resolver (docker rewrites its resolv.conf the same way).
        if n.name != DEFAULT_NETWORK && nets.netns_path(&rec.id).exists() {
            crate::etcfiles::switch_to_embedded_dns(&self.ctr_dir(&rec.id), rec)?;
        }
        Ok(n)
    }

    pub fn disconnect_network(
        &self,
        nets: &mut Networks,
        rec: &Record,
        network: &str,
    ) -> Result<Network> {
        let n = nets.disconnect(&rec.id, &rec.host_config.network_mode, network)?;
        self.emit_net_connect("disconnect", &rec.id, &n);
        Ok(n)
    }
}

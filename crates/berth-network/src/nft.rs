//! nftables rules in the shared table `inet berth`, applied as one `nft -f -` script per change
//! and tagged with a comment ("berth-net:<bridge>", "berth-ctr:<container id>") so they can be
//! removed by tag.

use std::io::{self, Write};
use std::net::IpAddr;
use std::process::{Command, Stdio};

use crate::ipnet::IpNet;
use crate::ports::PortMapping;

/// Errors of firewall handling; each names the step and carries nft's output.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// `nft` could not be run.
    #[error("nft {step}: cannot run nft")]
    Spawn {
        /// What was being done.
        step: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `nft` refused the script (kept for debugging; the message is nft's first line).
    #[error("nft {step}: {}", .stderr.lines().next().unwrap_or_default())]
    Failed {
        /// What was being done.
        step: &'static str,
        /// nft's error output.
        stderr: String,
        /// The script that was applied.
        script: String,
    },
    /// `nft -j` printed something that is not the expected JSON.
    #[error("nft {step}: unreadable JSON")]
    Json {
        /// What was being done.
        step: &'static str,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A bridge name or container id with characters nft comments or strings cannot carry.
    #[error("nft: bad name {name:?}")]
    BadName {
        /// The name.
        name: String,
    },
    /// Another container (of this or another Berth root) publishes the port.
    #[error("port {port}/{proto} is already published by container {owner}")]
    PortTaken {
        /// The host port.
        port: u16,
        /// `tcp` or `udp`.
        proto: String,
        /// The container whose rule has it.
        owner: String,
    },
    /// A port mapping whose host IP and container IP are of different families.
    #[error(
        "nft: port {port}: host ip {host_ip} and container ip {container_ip} differ in family"
    )]
    FamilyMismatch {
        /// The host port.
        port: u16,
        /// The host address.
        host_ip: IpAddr,
        /// The container address.
        container_ip: IpAddr,
    },
}

/// The rules of one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    /// Bridge interface name.
    pub bridge: String,
    /// The network's subnets (v4 and/or v6).
    pub subnets: Vec<IpNet>,
    /// Internal: no masquerade, nothing in or out of the bridge except between its ports.
    pub internal: bool,
}

const TABLE: &str = "inet berth";
const NET_TAG: &str = "berth-net:";
const CTR_TAG: &str = "berth-ctr:";

/// Table, base chains and the bridges set; every statement is idempotent.
const BASE: &str = "add table inet berth
add chain inet berth prerouting { type nat hook prerouting priority dstnat; }
add chain inet berth output { type nat hook output priority -100; }
add chain inet berth postrouting { type nat hook postrouting priority srcnat; }
add chain inet berth forward { type filter hook forward priority filter; policy accept; }
add chain inet berth input { type filter hook input priority filter; policy accept; }
add set inet berth bridges { type ifname; }
";

/// Install a network's rules (masquerade, loopback and hairpin NAT, isolation). Idempotent:
/// the bridge's old rules are deleted in the same atomic script.
pub fn add_network_rules(r: &NetworkRules) -> Result<(), NftError> {
    check_name(&r.bridge)?;
    with_retry("add network rules", |state| {
        let mut script = String::from(BASE);
        script.push_str(&state.delete_script(&format!("{NET_TAG}{}", r.bridge)));
        script.push_str(&network_script(r));
        script
    })
}

/// Remove a network's rules and its entry in the bridges set; Ok if there are none.
pub fn remove_network_rules(bridge: &str) -> Result<(), NftError> {
    check_name(bridge)?;
    with_retry("remove network rules", |state| {
        let mut script = state.delete_script(&format!("{NET_TAG}{bridge}"));
        if state.bridges.iter().any(|b| b == bridge) {
            script.push_str(&format!(
                "delete element {TABLE} bridges {{ \"{bridge}\" }}\n"
            ));
        }
        script
    })
}

/// Install DNAT rules for a container's published ports (replacing any it had).
/// A host port another container's rule already has is refused.
pub fn add_port_rules(container_id: &str, ports: &[PortMapping]) -> Result<(), NftError> {
    check_name(container_id)?;
    let mut rules = String::new();
    for p in ports {
        rules.push_str(&port_rules(container_id, p)?);
    }
    let state = TableState::read()?;
    for p in ports {
        if let Some(owner) = state.publisher(p, container_id) {
            return Err(NftError::PortTaken {
                port: p.host_port,
                proto: p.proto.to_string(),
                owner: owner.to_owned(),
            });
        }
    }
    with_retry("add port rules", |state| {
        let mut script = String::from(BASE);
        script.push_str(&state.delete_script(&format!("{CTR_TAG}{container_id}")));
        script.push_str(&rules);
        script
    })
}

/// Remove a container's port rules; Ok if there are none.
pub fn remove_port_rules(container_id: &str) -> Result<(), NftError> {
    check_name(container_id)?;
    with_retry("remove port rules", |state| {
        state.delete_script(&format!("{CTR_TAG}{container_id}"))
    })
}

/// Container ids and bridges that currently have rules (for crash cleanup by the engine).
pub fn tagged() -> Result<(Vec<String>, Vec<String>), NftError> {
    let state = TableState::read()?;
    let mut ids = Vec::new();
    let mut bridges = state.bridges.clone();
    for rule in &state.rules {
        if let Some(id) = rule.comment.strip_prefix(CTR_TAG) {
            ids.push(id.to_string());
        } else if let Some(br) = rule.comment.strip_prefix(NET_TAG) {
            bridges.push(br.to_string());
        }
    }
    for v in [&mut ids, &mut bridges] {
        v.sort();
        v.dedup();
    }
    Ok((ids, bridges))
}

/// Build a script from the current table state and apply it; if nft refuses it (another
/// berth changed the table between the listing and the apply), list again and retry twice.
fn with_retry(step: &'static str, build: impl Fn(&TableState) -> String) -> Result<(), NftError> {
    let mut attempt = 0;
    loop {
        let script = build(&TableState::read()?);
        match apply(step, &script) {
            Err(NftError::Failed { .. }) if attempt < 2 => attempt += 1,
            other => return other,
        }
    }
}

fn check_name(name: &str) -> Result<(), NftError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(NftError::BadName { name: name.into() })
    }
}

fn network_script(r: &NetworkRules) -> String {
    let br = &r.bridge;
    let tag = format!("comment \"{NET_TAG}{br}\"");
    let mut s = format!("add element {TABLE} bridges {{ \"{br}\" }}\n");
    let mut rule =
        |chain: &str, body: &str| s.push_str(&format!("add rule {TABLE} {chain} {body} {tag}\n"));
    if r.internal {
        rule(
            "forward",
            &format!("iifname \"{br}\" oifname != \"{br}\" drop"),
        );
        rule(
            "forward",
            &format!("oifname \"{br}\" iifname != \"{br}\" drop"),
        );
        return s;
    }
    for net in &r.subnets {
        let fam = if net.is_v4() { "ip" } else { "ip6" };
        let net = net.network();
        rule(
            "postrouting",
            &format!("{fam} saddr {net} oifname != \"{br}\" masquerade"),
        );
        // Hairpin: a container reaching a published port of its own network. The input
        // interface is not known in postrouting, so the source subnet stands for it.
        rule(
            "postrouting",
            &format!("oifname \"{br}\" {fam} saddr {net} ct status dnat masquerade"),
        );
    }
    rule(
        "postrouting",
        &format!("oifname \"{br}\" ip saddr 127.0.0.0/8 masquerade"),
    );
    // route_localnet (for the loopback DNAT above) also lets packets from the bridge to
    // 127.0.0.0/8 in: only replies may (CVE-2020-8558, kube-proxy's rule).
    rule(
        "input",
        &format!(
            "iifname \"{br}\" ip daddr 127.0.0.0/8 ct state != {{ established, related }} drop"
        ),
    );
    rule(
        "forward",
        &format!("iifname \"{br}\" oifname \"{br}\" accept"),
    );
    rule(
        "forward",
        &format!("iifname \"{br}\" oifname @bridges drop"),
    );
    s
}

fn port_rules(id: &str, p: &PortMapping) -> Result<String, NftError> {
    let (fam, nfproto) = if p.container_ip.is_ipv4() {
        ("ip", "ipv4")
    } else {
        ("ip6", "ipv6")
    };
    let dest = match p.host_ip {
        Some(h) if h.is_ipv4() != p.container_ip.is_ipv4() => {
            return Err(NftError::FamilyMismatch {
                port: p.host_port,
                host_ip: h,
                container_ip: p.container_ip,
            })
        }
        Some(h) => format!("{fam} daddr {h}"),
        None => format!("meta nfproto {nfproto} fib daddr type local"),
    };
    let to = match p.container_ip {
        IpAddr::V4(ip) => format!("{ip}:{}", p.container_port),
        IpAddr::V6(ip) => format!("[{ip}]:{}", p.container_port),
    };
    let body = format!(
        "{dest} meta l4proto {proto} th dport {port} dnat {fam} to {to} comment \"{CTR_TAG}{id}\"",
        proto = p.proto,
        port = p.host_port,
    );
    Ok(format!(
        "add rule {TABLE} prerouting {body}\nadd rule {TABLE} output {body}\n"
    ))
}

/// Run `nft -f -` with `script` on stdin.
fn apply(step: &'static str, script: &str) -> Result<(), NftError> {
    if script.is_empty() {
        return Ok(());
    }
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| NftError::Spawn { step, source })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|source| NftError::Spawn { step, source })?;
    }
    let out = child
        .wait_with_output()
        .map_err(|source| NftError::Spawn { step, source })?;
    if out.status.success() {
        return Ok(());
    }
    Err(NftError::Failed {
        step,
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        script: script.to_string(),
    })
}

/// One rule of the table: where it is, its comment, and for a published port what it
/// matches (protocol and port, and the host address unless any).
#[derive(Debug)]
struct TaggedRule {
    chain: String,
    handle: u64,
    comment: String,
    dport: Option<(String, u64)>,
    daddr: Option<String>,
}

/// What `nft -j -a list table inet berth` shows: tagged rules and the bridges set.
#[derive(Debug, Default)]
struct TableState {
    rules: Vec<TaggedRule>,
    bridges: Vec<String>,
}

impl TableState {
    /// List the table; a missing table is an empty state.
    fn read() -> Result<TableState, NftError> {
        let step = "list table";
        let out = Command::new("nft")
            .args(["-j", "-a", "list", "table", "inet", "berth"])
            .output()
            .map_err(|source| NftError::Spawn { step, source })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("No such file or directory") {
                return Ok(TableState::default());
            }
            return Err(NftError::Failed {
                step,
                stderr: stderr.trim().into(),
                script: String::new(),
            });
        }
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|source| NftError::Json { step, source })?;
        Ok(TableState::from_json(&json))
    }

    fn from_json(json: &serde_json::Value) -> TableState {
        let mut state = TableState::default();
        let items = json
            .get("nftables")
            .and_then(|v| v.as_array())
            .map_or(&[][..], |v| v);
        for item in items {
            if let Some(rule) = item.get("rule") {
                let chain = rule.get("chain").and_then(|v| v.as_str());
                let handle = rule.get("handle").and_then(|v| v.as_u64());
                let comment = rule.get("comment").and_then(|v| v.as_str());
                if let (Some(chain), Some(handle), Some(comment)) = (chain, handle, comment) {
                    let (dport, daddr) = matches_of(rule);
                    state.rules.push(TaggedRule {
                        chain: chain.into(),
                        handle,
                        comment: comment.into(),
                        dport,
                        daddr,
                    });
                }
            } else if let Some(set) = item
                .get("set")
                .filter(|s| s.get("name") == Some(&"bridges".into()))
            {
                let elems = set
                    .get("elem")
                    .and_then(|v| v.as_array())
                    .map_or(&[][..], |v| v);
                state
                    .bridges
                    .extend(elems.iter().filter_map(|e| e.as_str().map(String::from)));
            }
        }
        state
    }

    /// The container (other than `me`) whose DNAT rule takes `p`'s host port and protocol on
    /// an address `p` also takes.
    fn publisher(&self, p: &PortMapping, me: &str) -> Option<&str> {
        let proto = p.proto.to_string();
        let host = p.host_ip.map(|h| h.to_string());
        self.rules.iter().find_map(|r| {
            let owner = r.comment.strip_prefix(CTR_TAG)?;
            let (their_proto, port) = r.dport.as_ref()?;
            let overlaps = host.is_none() || r.daddr.is_none() || r.daddr == host;
            (owner != me && their_proto == &proto && *port == u64::from(p.host_port) && overlaps)
                .then_some(owner)
        })
    }

    /// `delete rule` lines for every rule whose comment is exactly `tag`.
    fn delete_script(&self, tag: &str) -> String {
        self.rules
            .iter()
            .filter(|r| r.comment == tag)
            .map(|r| format!("delete rule {TABLE} {} handle {}\n", r.chain, r.handle))
            .collect()
    }
}

/// A rule's `tcp|udp dport N` and `ip|ip6 daddr A` matches, from nft's JSON.
fn matches_of(rule: &serde_json::Value) -> (Option<(String, u64)>, Option<String>) {
    let mut dport = None;
    let mut daddr = None;
    let exprs = rule.get("expr").and_then(|e| e.as_array());
    for m in exprs.into_iter().flatten().filter_map(|e| e.get("match")) {
        let payload = m.get("left").and_then(|l| l.get("payload"));
        let protocol = payload
            .and_then(|p| p.get("protocol"))
            .and_then(|p| p.as_str());
        let field = payload
            .and_then(|p| p.get("field"))
            .and_then(|f| f.as_str());
        let right = m.get("right");
        match (protocol, field) {
            (Some(proto @ ("tcp" | "udp" | "th")), Some("dport")) => {
                dport = right
                    .and_then(|r| r.as_u64())
                    .map(|n| (proto.to_owned(), n));
            }
            (Some("ip" | "ip6"), Some("daddr")) => {
                daddr = right.and_then(|r| r.as_str()).map(str::to_owned);
            }
            _ => {}
        }
    }
    (dport, daddr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_ports_of_other_containers_are_found() {
        // As nft 1.0.6 lists `meta l4proto tcp th dport 8080` and `ip daddr 127.0.0.1`.
        let json: serde_json::Value = serde_json::from_str(
            r#"{"nftables": [
              {"rule": {"chain": "prerouting", "handle": 7, "comment": "berth-ctr:abc", "expr": [
                {"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv4"}},
                {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8080}},
                {"dnat": {"family": "ip", "addr": "10.1.1.2", "port": 80}}]}},
              {"rule": {"chain": "prerouting", "handle": 8, "comment": "berth-ctr:def", "expr": [
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "127.0.0.1"}},
                {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 53}},
                {"dnat": {"family": "ip", "addr": "10.1.1.3", "port": 53}}]}}]}"#,
        )
        .expect("json");
        let state = TableState::from_json(&json);
        let mapping = |host: Option<&str>, port, proto| PortMapping {
            host_ip: host.map(|h| h.parse().expect("ip")),
            host_port: port,
            proto,
            container_ip: "10.9.9.9".parse().expect("ip"),
            container_port: 1,
        };
        use crate::ports::Proto::{Tcp, Udp};
        assert_eq!(
            state.publisher(&mapping(None, 8080, Tcp), "me"),
            Some("abc")
        );
        assert_eq!(
            state.publisher(&mapping(Some("127.0.0.2"), 8080, Tcp), "me"),
            Some("abc")
        );
        assert_eq!(state.publisher(&mapping(None, 8080, Tcp), "abc"), None);
        assert_eq!(state.publisher(&mapping(None, 8080, Udp), "me"), None);
        assert_eq!(state.publisher(&mapping(None, 53, Udp), "me"), Some("def"));
        assert_eq!(
            state.publisher(&mapping(Some("127.0.0.1"), 53, Udp), "me"),
            Some("def")
        );
        assert_eq!(
            state.publisher(&mapping(Some("127.0.0.2"), 53, Udp), "me"),
            None
        );
    }

    #[test]
    fn parses_listing() {
        let json = serde_json::json!({"nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {"table": {"family": "inet", "name": "berth", "handle": 1}},
            {"set": {"family": "inet", "name": "bridges", "table": "berth", "type": "ifname", "elem": ["br0", "br1"]}},
            {"rule": {"family": "inet", "table": "berth", "chain": "forward", "handle": 7, "comment": "berth-net:br0", "expr": []}},
            {"rule": {"family": "inet", "table": "berth", "chain": "output", "handle": 9, "comment": "berth-ctr:abc", "expr": []}},
            {"rule": {"family": "inet", "table": "berth", "chain": "output", "handle": 10, "expr": []}}
        ]});
        let s = TableState::from_json(&json);
        assert_eq!(s.bridges, ["br0", "br1"]);
        assert_eq!(s.rules.len(), 2);
        assert_eq!(
            s.delete_script("berth-ctr:abc"),
            "delete rule inet berth output handle 9\n"
        );
        assert_eq!(s.delete_script("berth-ctr:ab"), "");
    }

    #[test]
    fn rejects_bad_names() {
        assert!(check_name("br0").is_ok());
        assert!(check_name("a\"b").is_err());
        assert!(check_name("").is_err());
    }
}

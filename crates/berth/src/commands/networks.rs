//! `berth network ...`: docker's output.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use berth_engine::containers::Engine;
use berth_engine::networks::{ConnectOptions, EndpointRow, Network, NetworkCreate};
use serde_json::{json, Map, Value};

use crate::cli::{
    ForceArgs, NetworkCommand, NetworkConnectArgs, NetworkCreateArgs, NetworkInspectArgs,
    NetworkLsArgs,
};
use crate::template::{render, render_rows, Format};

/// Run a `network` subcommand.
pub fn network(engine: &mut Engine, command: &NetworkCommand) -> Result<i32> {
    match command {
        NetworkCommand::Create(a) => create(engine, a),
        NetworkCommand::Ls(a) => ls(engine, a),
        NetworkCommand::Inspect(a) => inspect(engine, a),
        NetworkCommand::Rm(a) => {
            let mut code = 0;
            for name in &a.names {
                match engine.network_remove(name) {
                    Ok(_) => println!("{name}"),
                    Err(e) => {
                        eprintln!("Error response from daemon: {e}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        NetworkCommand::Prune(a) => prune(engine, a),
        NetworkCommand::Connect(a) => connect(engine, a),
        NetworkCommand::Disconnect(a) => {
            engine.network_disconnect(&a.network, &a.container, a.force)?;
            Ok(0)
        }
    }
}

fn create(engine: &mut Engine, a: &NetworkCreateArgs) -> Result<i32> {
    let req = NetworkCreate {
        name: a.name.clone(),
        driver: a.driver.clone(),
        subnets: a.subnet.clone(),
        gateways: a.gateway.clone(),
        ip_ranges: a.ip_range.clone(),
        internal: a.internal,
        ipv6: a.ipv6,
        options: key_values("-o", &a.opt)?,
        labels: key_values("--label", &a.label)?,
    };
    let n = engine.network_create(&req)?;
    println!("{}", n.id);
    Ok(0)
}

fn key_values(flag: &str, list: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in list {
        let Some((k, v)) = item.split_once('=') else {
            bail!("invalid {flag} {item:?}: expected KEY=VALUE");
        };
        out.insert(k.to_owned(), v.to_owned());
    }
    Ok(out)
}

fn ls(engine: &mut Engine, a: &NetworkLsArgs) -> Result<i32> {
    let networks = engine.networks()?;
    if a.quiet {
        for n in &networks {
            println!("{}", id_text(&n.id, a.no_trunc));
        }
        return Ok(0);
    }
    let rows: Vec<Map<String, Value>> = networks
        .iter()
        .map(|n| {
            let mut o = Map::new();
            o.insert("ID".into(), id_text(&n.id, a.no_trunc).into());
            o.insert("Name".into(), n.name.clone().into());
            o.insert("Driver".into(), n.driver.clone().into());
            o.insert("Scope".into(), "local".into());
            o.insert("Internal".into(), n.config.internal.to_string().into());
            o.insert("IPv6".into(), n.config.ipv6.to_string().into());
            o.insert("CreatedAt".into(), n.created.clone().into());
            o
        })
        .collect();
    let columns = [
        ("NETWORK ID", "ID"),
        ("NAME", "Name"),
        ("DRIVER", "Driver"),
        ("SCOPE", "Scope"),
    ];
    let text = render_rows(&Format::parse(a.format.as_deref()), &rows, &columns)
        .map_err(anyhow::Error::msg)?;
    print!("{text}");
    Ok(0)
}

fn id_text(id: &str, no_trunc: bool) -> &str {
    if no_trunc {
        id
    } else {
        &id[..id.len().min(12)]
    }
}

fn inspect(engine: &mut Engine, a: &NetworkInspectArgs) -> Result<i32> {
    let mut objects = Vec::new();
    let mut code = 0;
    for name in &a.names {
        match engine.network(name) {
            Ok(n) => {
                let members = engine.network_containers(&n.id)?;
                objects.push(network_object(&n, &members));
            }
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                code = 1;
            }
        }
    }
    match Format::parse(a.format.as_deref()) {
        Format::Template { text, .. } => {
            for o in &objects {
                if let Value::Object(map) = o {
                    println!("{}", render(&text, map).map_err(anyhow::Error::msg)?);
                }
            }
        }
        _ => println!("{}", serde_json::to_string_pretty(&objects)?),
    }
    Ok(code)
}

/// docker's `network inspect` object.
fn network_object(n: &Network, members: &[(String, String, EndpointRow)]) -> Value {
    let config: Vec<Value> = n
        .config
        .subnets
        .iter()
        .map(|s| {
            let mut o = json!({"Subnet": s.subnet, "Gateway": s.gateway});
            if let Some(r) = &s.ip_range {
                o["IPRange"] = r.clone().into();
            }
            o
        })
        .collect();
    let containers: Map<String, Value> = members
        .iter()
        .map(|(id, name, e)| (id.clone(), endpoint_summary(n, name, e)))
        .collect();
    let mut options: Map<String, Value> = n
        .config
        .options
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    if n.driver == "bridge" {
        options.insert(
            "com.docker.network.bridge.name".into(),
            n.interface.clone().into(),
        );
    }
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": n.config.ipv6,
        "IPAM": {"Driver": "default", "Options": {}, "Config": config},
        "Internal": n.config.internal,
        "Attachable": false,
        "Ingress": false,
        "Containers": containers,
        "Options": options,
        "Labels": n.config.labels,
    })
}

fn endpoint_summary(n: &Network, name: &str, e: &EndpointRow) -> Value {
    let with_prefix = |ip: Option<std::net::IpAddr>| {
        ip.map(|ip| {
            let prefix = n
                .config
                .subnets
                .iter()
                .find(|s| s.subnet.contains(':') == ip.is_ipv6())
                .and_then(|s| s.subnet.split('/').nth(1))
                .unwrap_or("32");
            format!("{ip}/{prefix}")
        })
        .unwrap_or_default()
    };
    json!({
        "Name": name,
        "IPv4Address": with_prefix(e.ip4),
        "IPv6Address": with_prefix(e.ip6),
        "MacAddress": mac_text(e),
    })
}

/// The MAC an endpoint has (or will have): asked for, or derived from its address.
pub fn mac_text(e: &EndpointRow) -> String {
    if let Some(mac) = &e.config.mac {
        return mac.clone();
    }
    match e.ip4 {
        Some(std::net::IpAddr::V4(a)) => berth_network::mac_for(Some(a))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
        _ => String::new(),
    }
}

fn prune(engine: &mut Engine, _a: &ForceArgs) -> Result<i32> {
    let removed = engine.network_prune()?;
    if !removed.is_empty() {
        println!("Deleted Networks:");
        for name in removed {
            println!("{name}");
        }
    }
    Ok(0)
}

fn connect(engine: &mut Engine, a: &NetworkConnectArgs) -> Result<i32> {
    let opts = ConnectOptions {
        aliases: a.alias.clone(),
        ip: a.ip.clone(),
        ip6: a.ip6.clone(),
    };
    engine.network_connect(&a.network, &a.container, &opts)?;
    Ok(0)
}

/// docker's `NetworkSettings` of a container.
pub fn network_settings(
    networks: &[(Network, EndpointRow)],
    ports: &Value,
    container_id: &str,
    netns: &str,
) -> Value {
    let mut by_name = Map::new();
    for (n, e) in networks {
        let subnet = |v6: bool| {
            n.config
                .subnets
                .iter()
                .find(|s| s.subnet.contains(':') == v6)
        };
        let prefix = |v6: bool| {
            subnet(v6)
                .and_then(|s| s.subnet.split('/').nth(1))
                .and_then(|p| p.parse::<u8>().ok())
                .unwrap_or(0)
        };
        let running = e.ip4.is_some() || e.ip6.is_some();
        let gateway = |v6: bool| {
            subnet(v6)
                .filter(|_| running && !n.config.internal)
                .map(|s| s.gateway.clone())
                .unwrap_or_default()
        };
        let mut aliases = e.config.aliases.clone();
        if n.name != "bridge" {
            aliases.push(container_id[..12].to_owned());
        }
        by_name.insert(
            n.name.clone(),
            json!({
                "Aliases": if aliases.is_empty() { Value::Null } else { aliases.into() },
                "NetworkID": n.id,
                "EndpointID": if running { format!("{}{}", &n.id[..32], &container_id[..32]) } else { String::new() },
                "Gateway": gateway(false),
                "IPAddress": e.ip4.map(|i| i.to_string()).unwrap_or_default(),
                "IPPrefixLen": if e.ip4.is_some() { prefix(false) } else { 0 },
                "IPv6Gateway": gateway(true),
                "GlobalIPv6Address": e.ip6.map(|i| i.to_string()).unwrap_or_default(),
                "GlobalIPv6PrefixLen": if e.ip6.is_some() { prefix(true) } else { 0 },
                "MacAddress": if running { mac_text(e) } else { String::new() },
            }),
        );
    }
    let mut port_map = Map::new();
    for p in ports.as_array().cloned().unwrap_or_default() {
        let key = format!(
            "{}/{}",
            p["PrivatePort"],
            p["Type"].as_str().unwrap_or("tcp")
        );
        let entry = port_map.entry(key).or_insert_with(|| json!([]));
        if let Value::Array(list) = entry {
            list.push(json!({"HostIp": p["IP"], "HostPort": p["PublicPort"].to_string()}));
        }
    }
    let default = by_name.get("bridge").cloned().unwrap_or(Value::Null);
    let field = |k: &str| default.get(k).cloned().unwrap_or_else(|| "".into());
    json!({
        "Bridge": "",
        "SandboxKey": netns,
        "Ports": port_map,
        "Gateway": field("Gateway"),
        "IPAddress": field("IPAddress"),
        "IPPrefixLen": default.get("IPPrefixLen").cloned().unwrap_or_else(|| 0.into()),
        "GlobalIPv6Address": field("GlobalIPv6Address"),
        "IPv6Gateway": field("IPv6Gateway"),
        "MacAddress": field("MacAddress"),
        "Networks": by_name,
    })
}

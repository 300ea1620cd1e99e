//! The layout check (`mqbroker --check-layout DIR`): every broker conf file of a deployment
//! checked together, for the mistakes no single file shows.
//!
//! Rules, each reported with file, line and key:
//! - ports (`listenPort`, `listenPort - 2`, `haListenPort`, the DLedger port) and store paths
//!   (`storePathRootDir`, `storePathCommitLog`) are unique per host;
//! - one `brokerClusterName`;
//! - master/slave pairs by `brokerName`: one master (brokerId 0) per name, every slave has its
//!   master, no two files with the same name and id;
//! - DLedger groups: identical `dLegerPeers` on every node, distinct self ids, and a node's own
//!   entry on its own host (`brokerIP1`).
//!
//! A file's host is its `brokerIP1`, else the host of its own `dLegerPeers` entry; files without
//! either are taken to be on hosts of their own, as the stock layouts are (one file per host).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// One conf file as read: (key, value, line) in file order.
#[derive(Debug, Clone)]
pub struct ConfFile {
    pub path: PathBuf,
    pub entries: Vec<(String, String, usize)>,
}

/// One finding: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    pub line: usize,
    pub key: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: `{}` {}", self.file, self.key, self.message)
        } else {
            write!(
                f,
                "{}:{}: `{}` {}",
                self.file, self.line, self.key, self.message
            )
        }
    }
}

/// The keys of one file the layout rules look at, with RocketMQ's defaults.
struct Node<'a> {
    file: &'a ConfFile,
    host: Option<String>,
}

impl Node<'_> {
    fn name(&self) -> String {
        self.file.path.display().to_string()
    }

    fn get(&self, key: &str) -> Option<(&str, usize)> {
        self.file
            .entries
            .iter()
            .rev()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, l)| (v.as_str(), *l))
    }

    fn value(&self, key: &str, default: &str) -> String {
        self.get(key)
            .map_or(default.to_string(), |(v, _)| v.to_string())
    }

    fn line(&self, key: &str) -> usize {
        self.get(key).map_or(0, |(_, l)| l)
    }

    fn finding(&self, key: &str, message: String) -> Finding {
        Finding {
            file: self.name(),
            line: self.line(key),
            key: key.to_string(),
            message,
        }
    }

    fn dledger(&self) -> bool {
        self.value("enableDLegerCommitLog", "false") == "true"
    }

    fn listen_port(&self) -> u32 {
        self.value("listenPort", "10911").parse().unwrap_or(10911)
    }

    /// (id, host, port) of every `dLegerPeers` entry.
    fn peers(&self) -> Vec<(String, String, u32)> {
        self.value("dLegerPeers", "")
            .split(';')
            .filter(|p| !p.trim().is_empty())
            .filter_map(|p| {
                let (id, addr) = p.trim().split_once('-')?;
                let (host, port) = addr.rsplit_once(':')?;
                Some((id.to_string(), host.to_string(), port.parse().ok()?))
            })
            .collect()
    }

    fn own_peer(&self) -> Option<(String, String, u32)> {
        let me = self.value("dLegerSelfId", "");
        self.peers().into_iter().find(|(id, _, _)| *id == me)
    }

    fn broker_id(&self) -> i64 {
        if self.dledger() {
            return -1;
        }
        match self.value("brokerRole", "ASYNC_MASTER").as_str() {
            "SLAVE" => self.value("brokerId", "0").parse().unwrap_or(0),
            _ => 0,
        }
    }

    /// (key, what) of every port this node listens on.
    fn ports(&self) -> Vec<(&'static str, u32)> {
        let listen = self.listen_port();
        let ha = self
            .get("haListenPort")
            .and_then(|(v, _)| v.parse().ok())
            .unwrap_or(listen + 1);
        let mut ports = vec![
            ("listenPort", listen),
            ("listenPort", listen.saturating_sub(2)),
            ("haListenPort", ha),
        ];
        if let Some((_, _, port)) = self.dledger().then(|| self.own_peer()).flatten() {
            ports.push(("dLegerPeers", port));
        }
        ports
    }

    /// (key, path) of the store directories.
    fn store_paths(&self, home: &str) -> Vec<(&'static str, String)> {
        let root = self.value("storePathRootDir", &format!("{home}/store"));
        let commitlog = self.value("storePathCommitLog", &format!("{root}/commitlog"));
        vec![
            ("storePathRootDir", root.trim_end_matches('/').to_string()),
            (
                "storePathCommitLog",
                commitlog.trim_end_matches('/').to_string(),
            ),
        ]
    }
}

/// Checks the files of one layout together; `check_file` validates one file alone (the conf
/// loader's own rules) and returns its error text.
pub fn check(
    files: &[ConfFile],
    check_file: impl Fn(&ConfFile) -> Result<(), String>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for f in files {
        if let Err(e) = check_file(f) {
            out.push(Finding {
                file: f.path.display().to_string(),
                line: 0,
                key: "*".into(),
                message: format!("does not load: {e}"),
            });
        }
    }
    let nodes: Vec<Node<'_>> = files
        .iter()
        .map(|file| {
            let mut n = Node { file, host: None };
            n.host = n
                .get("brokerIP1")
                .map(|(v, _)| v.to_string())
                .or_else(|| n.dledger().then(|| n.own_peer()).flatten().map(|p| p.1));
            n
        })
        .collect();
    unique_per_host(&nodes, &mut out);
    one_cluster(&nodes, &mut out);
    pairs(&nodes, &mut out);
    dledger_groups(&nodes, &mut out);
    out
}

fn unique_per_host(nodes: &[Node<'_>], out: &mut Vec<Finding>) {
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    let mut ports: BTreeMap<(String, u32), (usize, &'static str)> = BTreeMap::new();
    let mut paths: BTreeMap<(String, String), (usize, &'static str)> = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        let Some(host) = &n.host else { continue };
        for (key, port) in n.ports() {
            if let Some((j, other_key)) = ports.insert((host.clone(), port), (i, key)) {
                if j != i {
                    out.push(n.finding(
                        key,
                        format!(
                            "uses port {port} on {host}, as `{other_key}` of {} does",
                            nodes[j].name()
                        ),
                    ));
                }
            }
        }
        for (key, path) in n.store_paths(&home) {
            if let Some((j, other_key)) = paths.insert((host.clone(), path.clone()), (i, key)) {
                if j != i {
                    out.push(n.finding(
                        key,
                        format!(
                            "is {path} on {host}, as `{other_key}` of {} is",
                            nodes[j].name()
                        ),
                    ));
                }
            }
        }
    }
}

fn one_cluster(nodes: &[Node<'_>], out: &mut Vec<Finding>) {
    let Some(first) = nodes.first() else { return };
    let name = first.value("brokerClusterName", "DefaultCluster");
    for n in &nodes[1..] {
        let other = n.value("brokerClusterName", "DefaultCluster");
        if other != name {
            out.push(n.finding(
                "brokerClusterName",
                format!(
                    "is `{other}` but {} says `{name}`: a layout is one cluster",
                    first.name()
                ),
            ));
        }
    }
}

fn pairs(nodes: &[Node<'_>], out: &mut Vec<Finding>) {
    let mut by_name: BTreeMap<String, Vec<&Node<'_>>> = BTreeMap::new();
    for n in nodes.iter().filter(|n| !n.dledger()) {
        by_name
            .entry(n.value("brokerName", ""))
            .or_default()
            .push(n);
    }
    for (name, group) in by_name {
        let mut seen: BTreeMap<i64, &Node<'_>> = BTreeMap::new();
        for n in &group {
            if let Some(prev) = seen.insert(n.broker_id(), n) {
                out.push(n.finding(
                    "brokerId",
                    format!(
                        "{} of brokerName `{name}` is also taken by {}",
                        n.broker_id(),
                        prev.name()
                    ),
                ));
            }
        }
        if !seen.contains_key(&0) {
            for n in &group {
                out.push(n.finding(
                    "brokerName",
                    format!("`{name}` has a slave but no master (brokerId 0) in this layout"),
                ));
            }
        }
    }
}

fn dledger_groups(nodes: &[Node<'_>], out: &mut Vec<Finding>) {
    let mut groups: BTreeMap<String, Vec<&Node<'_>>> = BTreeMap::new();
    for n in nodes.iter().filter(|n| n.dledger()) {
        groups
            .entry(n.value("dLegerGroup", ""))
            .or_default()
            .push(n);
    }
    for (group, members) in groups {
        let first = members[0];
        let peers = first.value("dLegerPeers", "");
        let mut ids: BTreeMap<String, &Node<'_>> = BTreeMap::new();
        for n in &members {
            let mine = n.value("dLegerPeers", "");
            if mine != peers {
                out.push(n.finding(
                    "dLegerPeers",
                    format!(
                        "is `{mine}` but {} of group `{group}` has `{peers}`",
                        first.name()
                    ),
                ));
            }
            let id = n.value("dLegerSelfId", "");
            if let Some(prev) = ids.insert(id.clone(), n) {
                out.push(n.finding(
                    "dLegerSelfId",
                    format!(
                        "`{id}` is also the self id of {} in group `{group}`",
                        prev.name()
                    ),
                ));
            }
            match (n.get("brokerIP1"), n.own_peer()) {
                (_, None) => out.push(n.finding(
                    "dLegerSelfId",
                    format!("`{id}` is not among dLegerPeers `{mine}`"),
                )),
                (Some((ip, _)), Some((_, host, _))) if ip != host => out.push(n.finding(
                    "brokerIP1",
                    format!("is {ip} but this node's dLegerPeers entry `{id}` is on {host}"),
                )),
                _ => {}
            }
        }
    }
}

/// Reads every `.properties` / `.conf` file under `dir` (sorted), with `parse` turning a file's
/// text into (key, value, line) entries.
pub fn read_dir(
    dir: &std::path::Path,
    parse: impl Fn(&str) -> Vec<(String, String, usize)>,
) -> std::io::Result<Vec<ConfFile>> {
    let mut paths = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .is_some_and(|x| x == "properties" || x == "conf")
            {
                paths.push(p);
            }
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)?;
            Ok(ConfFile {
                entries: parse(&text),
                path,
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod tests;

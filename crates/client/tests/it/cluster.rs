//! A name server and a broker as real processes on their own loopback address, stopped on drop.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use ferrocket_client::{Admin, ClientConfig};
use ferrocket_testkit::{
    bin_path, free_port_on, start_namesrv, wait_for_port, ProcessGuard, TempDir,
};

pub struct Cluster {
    pub namesrv: String,
    pub broker: String,
    broker_conf: PathBuf,
    _ns: ProcessGuard,
    pub broker_proc: ProcessGuard,
    _dir: TempDir,
}

/// A listen port whose fast (port - 2) and HA (port + 1) ports are free too.
fn broker_port(ip: &str) -> u16 {
    for _ in 0..200 {
        let p = free_port_on(ip);
        if p > 1026
            && p < 65534
            && std::net::TcpListener::bind((ip, p - 2)).is_ok()
            && std::net::TcpListener::bind((ip, p + 1)).is_ok()
        {
            return p;
        }
    }
    panic!("no free port triple on {ip}");
}

fn spawn_broker(conf: &PathBuf) -> ProcessGuard {
    ProcessGuard::spawn(
        "mqbroker",
        Command::new(bin_path("mqbroker"))
            .arg("-c")
            .arg(conf)
            .env("RUST_LOG", "warn"),
    )
}

impl Cluster {
    /// Starts both on `ip` (one address per test, e.g. 127.0.0.61) and waits until the broker
    /// is registered.
    pub fn start(ip: &str) -> Cluster {
        Self::start_with(ip, "")
    }

    /// Like [`Cluster::start`] with extra broker conf lines.
    pub fn start_with(ip: &str, extra: &str) -> Cluster {
        let dir = TempDir::new("client-it");
        let (ns, namesrv) = start_namesrv(dir.path(), ip);
        let port = broker_port(ip);
        let broker_conf = dir.path().join("broker.properties");
        std::fs::write(
            &broker_conf,
            format!(
                "brokerClusterName=DefaultCluster\nbrokerName=broker-a\nbrokerId=0\n\
                 brokerIP1={ip}\nlistenPort={port}\nnamesrvAddr={namesrv}\n\
                 storePathRootDir={}\nmappedFileSizeCommitLog=16777216\n\
                 messageDelayLevel=1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s\n{extra}\n",
                dir.path().join("store").display()
            ),
        )
        .unwrap();
        let broker_proc = spawn_broker(&broker_conf);
        let broker = format!("{ip}:{port}");
        wait_for_port(&broker, Duration::from_secs(30));
        let c = Cluster {
            namesrv,
            broker,
            broker_conf,
            _ns: ns,
            broker_proc,
            _dir: dir,
        };
        c.wait_registered();
        c
    }

    pub fn config(&self) -> ClientConfig {
        ClientConfig::new(&self.namesrv).timeout(Duration::from_secs(5))
    }

    /// Blocks until the name server lists the broker.
    pub fn wait_registered(&self) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let admin = Admin::new(self.config()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = rt.block_on(admin.cluster_info()).is_ok_and(|ci| {
                ci.broker_addr_table
                    .values()
                    .any(|b| b.broker_addrs.get(&0) == Some(&self.broker))
            });
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "broker never registered");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, wait, start again on the same store.
    pub fn restart_broker(&mut self) {
        self.broker_proc.signal(libc_sigterm());
        self.broker_proc.wait_exit(Duration::from_secs(30));
        self.broker_proc = spawn_broker(&self.broker_conf);
        wait_for_port(&self.broker, Duration::from_secs(30));
    }
}

fn libc_sigterm() -> i32 {
    15
}

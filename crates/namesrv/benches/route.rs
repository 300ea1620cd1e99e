//! Route lookup with 1,000 topics registered on 4 brokers: the handler path without sockets.

use std::collections::BTreeMap;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use ferrocket_namesrv::route::{Registration, RouteTable};
use ferrocket_protocol::body::{DataVersion, TopicConfig};

fn bench(c: &mut Criterion) {
    let mut rt = RouteTable::new(std::time::Duration::from_secs(120));
    let topics: BTreeMap<String, TopicConfig> = (0..1000)
        .map(|i| {
            (
                format!("topic-{i}"),
                TopicConfig::new(&format!("topic-{i}"), 8, 8, 6),
            )
        })
        .collect();
    for b in 0..4 {
        let name = format!("broker-{b}");
        let addr = format!("127.0.0.{}:10911", b + 1);
        let reg = Registration {
            cluster: "DefaultCluster",
            broker_name: &name,
            broker_addr: &addr,
            broker_id: 0,
            ha_server_addr: &addr,
            timeout: None,
            data_version: DataVersion::default(),
            topics: &topics,
        };
        rt.register(&reg, b, Instant::now());
    }
    c.bench_function("route lookup + JSON (1000 topics, 4 brokers)", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) % 1000;
            let r = rt.route(&format!("topic-{i}")).expect("route");
            ferrocket_protocol::body::to_json(&r, true)
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);

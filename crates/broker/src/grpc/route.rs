//! QueryRoute: the queues of a topic on every broker serving it (from the name servers' route,
//! the masters' addresses with this broker's `grpcServerPort`: brokers of one cluster are
//! expected to use the same port), or this broker's own queues when no name server answers.

use std::net::IpAddr;
use std::time::Duration;

use ferrocket_protocol::body::route::TopicRouteData;
use ferrocket_protocol::{RemotingCommand, RequestCode};

use super::pb;
use crate::body::perm;
use crate::Broker;

/// Every message type: topics carry no `message.type` attribute here, so each accepts all
/// (the proxy's MIXED); clients refuse to send a type the route does not list.
const ALL_TYPES: [pb::MessageType; 4] = [
    pb::MessageType::Normal,
    pb::MessageType::Fifo,
    pb::MessageType::Delay,
    pb::MessageType::Transaction,
];

/// The gRPC endpoint of `ip` on `port`.
fn endpoints_at(ip: IpAddr, port: u16) -> pb::Endpoints {
    pb::Endpoints {
        scheme: match ip {
            IpAddr::V4(_) => pb::AddressScheme::IPv4,
            IpAddr::V6(_) => pb::AddressScheme::IPv6,
        } as i32,
        addresses: vec![pb::Address {
            host: ip.to_string(),
            port: i32::from(port),
        }],
    }
}

/// This broker's gRPC endpoint.
pub(crate) fn endpoints(b: &Broker) -> pb::Endpoints {
    endpoints_at(b.conf.broker_ip1, b.conf.grpc_server_port)
}

/// The gRPC endpoint of the broker at remoting address `addr` (`ip:port`).
fn endpoints_of(addr: &str, port: u16) -> Option<pb::Endpoints> {
    let ip: IpAddr = addr.rsplit_once(':')?.0.parse().ok()?;
    Some(endpoints_at(ip, port))
}

fn queues(
    topic: &pb::Resource,
    broker: &pb::Broker,
    read: i32,
    write: i32,
    perm_bits: i32,
    writable_here: bool,
) -> Vec<pb::MessageQueue> {
    let readable = perm::readable(perm_bits);
    let writable = perm::writeable(perm_bits) && writable_here;
    (0..read.max(write).max(0))
        .filter_map(|id| {
            let permission = match (readable && id < read, writable && id < write) {
                (true, true) => pb::Permission::ReadWrite,
                (true, false) => pb::Permission::Read,
                (false, true) => pb::Permission::Write,
                (false, false) => return None,
            };
            Some(pb::MessageQueue {
                topic: Some(topic.clone()),
                id,
                permission: permission as i32,
                broker: Some(broker.clone()),
                accept_message_types: ALL_TYPES.iter().map(|t| *t as i32).collect(),
            })
        })
        .collect()
}

/// The topic's route from the first name server that has it.
async fn cluster_route(b: &Broker, topic: &str) -> Option<TopicRouteData> {
    for client in &b.route_namesrv {
        let ns = &client.addr;
        let req = RemotingCommand::request(RequestCode::GET_ROUTEINFO_BY_TOPIC)
            .with_ext("topic", topic)
            .with_ext("acceptStandardJsonOnly", true);
        match client.call(req, Duration::from_secs(3)).await {
            Ok(r) if r.code == 0 => {
                match ferrocket_protocol::fastjson::from_slice::<TopicRouteData>(&r.body) {
                    Ok(route) => return Some(route),
                    Err(e) => tracing::warn!(%ns, error = %e, "unreadable route"),
                }
            }
            Ok(_) => return None,
            Err(e) => tracing::debug!(%ns, error = %e, "name server unreachable for QueryRoute"),
        }
    }
    None
}

/// Every master's queues of the topic, from the name servers' route.
pub(crate) async fn query_route(b: &Broker, req: &pb::QueryRouteRequest) -> pb::QueryRouteResponse {
    let topic = req.topic.clone().unwrap_or_default();
    let full = super::resource_name(&req.topic);
    if let Some(route) = cluster_route(b, &full).await {
        let mut message_queues = Vec::new();
        for qd in &route.queue_datas {
            let Some(master) = route
                .broker_datas
                .iter()
                .find(|d| d.broker_name == qd.broker_name)
                .and_then(|d| d.broker_addrs.get(&0))
            else {
                continue; // no master now: its queues are not writable anywhere
            };
            let Some(endpoints) = endpoints_of(master, b.conf.grpc_server_port) else {
                continue;
            };
            let broker = pb::Broker {
                name: qd.broker_name.clone(),
                id: 0,
                endpoints: Some(endpoints),
            };
            message_queues.extend(queues(
                &topic,
                &broker,
                qd.read_queue_nums,
                qd.write_queue_nums,
                qd.perm,
                true,
            ));
        }
        if !message_queues.is_empty() {
            return pb::QueryRouteResponse {
                status: super::ok(),
                message_queues,
            };
        }
    }
    local_route(b, &topic, &full)
}

/// This broker's own queues of the topic.
fn local_route(b: &Broker, topic: &pb::Resource, full: &str) -> pb::QueryRouteResponse {
    let Some(tc) = b.topics.get(full) else {
        return pb::QueryRouteResponse {
            status: super::status(pb::Code::TopicNotFound, format!("topic {full} not found")),
            message_queues: Vec::new(),
        };
    };
    // Clients only use queues of broker id 0 (the master); a slave offers reads only.
    let broker = pb::Broker {
        name: b.conf.broker_name.clone(),
        id: 0,
        endpoints: Some(endpoints(b)),
    };
    pb::QueryRouteResponse {
        status: super::ok(),
        message_queues: queues(
            topic,
            &broker,
            tc.read_queue_nums,
            tc.write_queue_nums,
            tc.perm,
            !b.is_slave(),
        ),
    }
}

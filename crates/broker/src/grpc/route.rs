//! QueryRoute: this broker's queues of a topic, with the gRPC endpoint clients send to.

use std::net::IpAddr;

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

pub(crate) fn endpoints(b: &Broker) -> pb::Endpoints {
    let ip = b.conf.broker_ip1;
    pb::Endpoints {
        scheme: match ip {
            IpAddr::V4(_) => pb::AddressScheme::IPv4,
            IpAddr::V6(_) => pb::AddressScheme::IPv6,
        } as i32,
        addresses: vec![pb::Address {
            host: ip.to_string(),
            port: i32::from(b.conf.grpc_server_port),
        }],
    }
}

pub(crate) fn query_route(b: &Broker, req: &pb::QueryRouteRequest) -> pb::QueryRouteResponse {
    let topic = req.topic.clone().unwrap_or_default();
    let Some(tc) = b.topics.get(&topic.name) else {
        return pb::QueryRouteResponse {
            status: super::status(
                pb::Code::TopicNotFound,
                format!("topic {} not found", topic.name),
            ),
            message_queues: Vec::new(),
        };
    };
    // Clients only use queues of broker id 0 (the master); a slave offers reads only.
    let writable = perm::writeable(tc.perm) && !b.is_slave();
    let readable = perm::readable(tc.perm);
    let broker = pb::Broker {
        name: b.conf.broker_name.clone(),
        id: 0,
        endpoints: Some(endpoints(b)),
    };
    let n = tc.read_queue_nums.max(tc.write_queue_nums).max(0);
    let message_queues = (0..n)
        .filter_map(|id| {
            let r = readable && id < tc.read_queue_nums;
            let w = writable && id < tc.write_queue_nums;
            let permission = match (r, w) {
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
        .collect();
    pb::QueryRouteResponse {
        status: super::ok(),
        message_queues,
    }
}

//! Request handling: one function from a request to its response, over the shared state.

use std::time::Instant;

use bytes::Bytes;
use ferrocket_protocol::body::{self, DataVersion, KvTable, RegisterBrokerBody};
use ferrocket_protocol::header::namesrv::*;
use ferrocket_protocol::header::CommandHeader;
use ferrocket_protocol::{RemotingCommand, RequestCode, ResponseCode};
use serde::Serialize;

use crate::route::{ConnId, Registration};
use crate::State;

/// The KV namespace holding `brokerName:queueNum;...` per ordered topic.
pub const ORDER_TOPIC_CONFIG: &str = "ORDER_TOPIC_CONFIG";

/// Answers one request (`None` for oneway requests).
pub fn handle(state: &State, req: &RemotingCommand, conn: ConnId) -> Option<RemotingCommand> {
    let resp = match dispatch(state, req, conn) {
        Ok(resp) => resp,
        Err(reason) => RemotingCommand::error_to(req, ResponseCode::SYSTEM_ERROR, reason),
    };
    (!req.is_oneway()).then_some(resp)
}

fn ok(req: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::response_to(req, ResponseCode::SUCCESS)
}

fn json_body<T: Serialize>(req: &RemotingCommand, value: &T) -> RemotingCommand {
    ok(req).with_body(body::to_json(value, body::wants_standard_json(req)))
}

fn dispatch(state: &State, req: &RemotingCommand, conn: ConnId) -> Result<RemotingCommand, String> {
    let Some(code) = RequestCode::from_i32(req.code) else {
        return Ok(not_supported(req));
    };
    let hdr = |e: ferrocket_protocol::HeaderError| e.to_string();
    Ok(match code {
        RequestCode::REGISTER_BROKER => register(state, req, conn)?,
        RequestCode::UNREGISTER_BROKER => {
            let h: UnregisterBrokerRequestHeader = req.header().map_err(hdr)?;
            if let Some(r) = state
                .routes
                .write()
                .expect("route lock")
                .remove_broker(&h.broker_addr, "unregistered")
            {
                tracing::info!(broker = %r.broker_addr, name = %r.broker_name, "broker unregistered");
            }
            ok(req)
        }
        RequestCode::QUERY_DATA_VERSION => {
            let h: UnregisterBrokerRequestHeader = req.header().map_err(hdr)?;
            let dv: DataVersion = ferrocket_protocol::fastjson::from_slice(&req.body)
                .map_err(|e| format!("data version body: {e}"))?;
            let (changed, ours) = state
                .routes
                .write()
                .expect("route lock")
                .query_data_version(&h.broker_addr, &dv, Instant::now());
            let mut resp = ok(req).with_ext("changed", changed);
            if let Some(ours) = ours {
                resp = resp.with_body(serde_json::to_vec(&ours).map_err(|e| e.to_string())?);
            }
            resp
        }
        RequestCode::GET_ROUTEINFO_BY_TOPIC => {
            let h: GetRouteInfoRequestHeader = req.header().map_err(hdr)?;
            let route = state.routes.read().expect("route lock").route(&h.topic);
            match route {
                Some(mut route) => {
                    if state.config.order_message_enable {
                        let kv = state.kv.lock().expect("kv lock");
                        route.order_topic_conf =
                            kv.get(ORDER_TOPIC_CONFIG, &h.topic).map(str::to_string);
                    }
                    json_body(req, &route)
                }
                None => RemotingCommand::error_to(
                    req,
                    ResponseCode::TOPIC_NOT_EXIST,
                    format!(
                        "No topic route info in name server for the topic: {}",
                        h.topic
                    ),
                ),
            }
        }
        RequestCode::GET_BROKER_CLUSTER_INFO => json_body(
            req,
            &state.routes.read().expect("route lock").cluster_info(),
        ),
        RequestCode::GET_ALL_TOPIC_LIST_FROM_NAMESERVER => {
            topic_list(req, state.routes.read().expect("route lock").all_topics())
        }
        RequestCode::GET_TOPICS_BY_CLUSTER => {
            let h: GetTopicsByClusterRequestHeader = req.header().map_err(hdr)?;
            topic_list(
                req,
                state
                    .routes
                    .read()
                    .expect("route lock")
                    .topics_by_cluster(&h.cluster),
            )
        }
        RequestCode::DELETE_TOPIC_IN_NAMESRV => {
            let h: DeleteTopicFromNamesrvRequestHeader = req.header().map_err(hdr)?;
            state
                .routes
                .write()
                .expect("route lock")
                .delete_topic(&h.topic, h.cluster_name.as_deref());
            ok(req)
        }
        RequestCode::WIPE_WRITE_PERM_OF_BROKER | RequestCode::ADD_WRITE_PERM_OF_BROKER => {
            let h: BrokerNameRequestHeader = req.header().map_err(hdr)?;
            let add = code == RequestCode::ADD_WRITE_PERM_OF_BROKER;
            let n = state
                .routes
                .write()
                .expect("route lock")
                .set_write_perm(&h.broker_name, add);
            ok(req).with_ext(
                if add {
                    "addTopicCount"
                } else {
                    "wipeTopicCount"
                },
                n,
            )
        }
        RequestCode::PUT_KV_CONFIG => {
            let h: PutKvConfigRequestHeader = req.header().map_err(hdr)?;
            state
                .kv
                .lock()
                .expect("kv lock")
                .put(&h.namespace, &h.key, &h.value);
            ok(req)
        }
        RequestCode::GET_KV_CONFIG => {
            let h: KvConfigKeyRequestHeader = req.header().map_err(hdr)?;
            match state.kv.lock().expect("kv lock").get(&h.namespace, &h.key) {
                Some(v) => ok(req).with_ext("value", v),
                None => RemotingCommand::error_to(
                    req,
                    ResponseCode::QUERY_NOT_FOUND,
                    format!("No config item, Namespace: {} Key: {}", h.namespace, h.key),
                ),
            }
        }
        RequestCode::DELETE_KV_CONFIG => {
            let h: KvConfigKeyRequestHeader = req.header().map_err(hdr)?;
            state
                .kv
                .lock()
                .expect("kv lock")
                .delete(&h.namespace, &h.key);
            ok(req)
        }
        RequestCode::GET_KVLIST_BY_NAMESPACE => {
            let h: GetKvListByNamespaceRequestHeader = req.header().map_err(hdr)?;
            match state.kv.lock().expect("kv lock").namespace(&h.namespace) {
                Some(t) => json_body(req, &KvTable { table: t.clone() }),
                None => RemotingCommand::error_to(
                    req,
                    ResponseCode::QUERY_NOT_FOUND,
                    format!("No config item, Namespace: {}", h.namespace),
                ),
            }
        }
        RequestCode::GET_NAMESRV_CONFIG => {
            let text: String = state
                .effective
                .iter()
                .map(|(k, v, _)| format!("{k}={v}\n"))
                .collect();
            ok(req).with_body(Bytes::from(text))
        }
        _ => not_supported(req),
    })
}

fn not_supported(req: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::error_to(
        req,
        ResponseCode::REQUEST_CODE_NOT_SUPPORTED,
        format!(" request type {} not supported", req.code),
    )
}

fn topic_list(req: &RemotingCommand, topics: Vec<String>) -> RemotingCommand {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct TopicList {
        topic_list: Vec<String>,
    }
    json_body(req, &TopicList { topic_list: topics })
}

fn register(state: &State, req: &RemotingCommand, conn: ConnId) -> Result<RemotingCommand, String> {
    let h: RegisterBrokerRequestHeader = req.header().map_err(|e| e.to_string())?;
    if let Some(expected) = h.body_crc32.filter(|c| *c != 0) {
        let actual = (crc32fast::hash(&req.body) & 0x7FFF_FFFF) as i32;
        if actual != expected {
            return Ok(RemotingCommand::error_to(
                req,
                ResponseCode::SYSTEM_ERROR,
                "crc32 not match",
            ));
        }
    }
    let body = if req.body.is_empty() {
        RegisterBrokerBody::default()
    } else {
        RegisterBrokerBody::decode(&req.body, h.compressed.unwrap_or(false))
            .map_err(|e| e.to_string())?
    };
    let wrapper = &body.topic_config_serialize_wrapper;
    let reg = Registration {
        cluster: &h.cluster_name,
        broker_name: &h.broker_name,
        broker_addr: &h.broker_addr,
        broker_id: h.broker_id,
        ha_server_addr: &h.ha_server_addr,
        timeout: h
            .heartbeat_timeout_millis
            .filter(|t| *t > 0)
            .map(|t| std::time::Duration::from_millis(t as u64)),
        data_version: wrapper.data_version,
        topics: &wrapper.topic_config_table,
    };
    let reply = state
        .routes
        .write()
        .expect("route lock")
        .register(&reg, conn, Instant::now());
    let head = RegisterBrokerResponseHeader {
        ha_server_addr: reply.ha_server_addr,
        master_addr: reply.master_addr,
    };
    let mut resp = ok(req);
    head.write_to(&mut resp.ext_fields);
    let kv = state.kv.lock().expect("kv lock");
    let table = kv
        .namespace(ORDER_TOPIC_CONFIG)
        .cloned()
        .unwrap_or_default();
    Ok(resp.with_body(body::to_json(&KvTable { table }, true)))
}

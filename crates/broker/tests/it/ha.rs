//! Master and slave processes: SYNC_MASTER answers SLAVE_NOT_AVAILABLE without a slave and
//! SUCCESS once one is connected; the slave's commitlog carries every message, readable there.

use std::time::Duration;

use ferrocket_protocol::SerializeType;

use crate::util::{broker_port, create_topic, decode_all, eventually, pull_req, send_req, Broker};

#[test]
fn sync_master_replicates_to_a_slave() {
    let master_port = broker_port();
    let master = Broker::start_on(master_port, "brokerRole = SYNC_MASTER\nslaveTimeout = 5000");
    let mut m = master.client();
    create_topic(&mut m, "HA", 1);
    let r = m
        .call(send_req("HA", 0, b"first", None, true, SerializeType::Json))
        .unwrap();
    assert_eq!(
        r.code, 11,
        "no slave yet: SLAVE_NOT_AVAILABLE (stored on the master)"
    );

    let slave = Broker::start(&format!(
        "brokerRole = SLAVE\nbrokerId = 1\nhaMasterAddress = 127.0.0.1:{}",
        master_port + 1
    ));
    let mut s = slave.client();
    // Without a name server the slave cannot learn masterAddr for metadata sync; create the
    // topic on it directly.
    create_topic(&mut s, "HA", 1);
    // Once the slave is connected and caught up, sends succeed.
    let ok = eventually(Duration::from_secs(60), || {
        let r = m
            .call(send_req("HA", 0, b"later", None, true, SerializeType::Json))
            .unwrap();
        (r.code == 0).then_some(())
    });
    assert!(
        ok.is_some(),
        "SYNC_MASTER send never acknowledged by the slave"
    );
    let r = m
        .call(send_req("HA", 0, b"last", None, true, SerializeType::Json))
        .unwrap();
    assert_eq!(r.code, 0);
    let max: i64 = r.ext("queueOffset").unwrap().parse::<i64>().unwrap() + 1;

    // Every message is on the slave at the same queue offsets.
    let got = eventually(Duration::from_secs(30), || {
        let r = s
            .call(pull_req("G", "HA", 0, 0, "*", 0, SerializeType::Json))
            .unwrap();
        if r.code != 0 {
            return None;
        }
        let msgs = decode_all(&r.body);
        (msgs.len() as i64 == max).then_some(msgs)
    })
    .expect("slave has every message");
    assert_eq!(got[0].body.as_ref(), b"first");
    assert_eq!(got.last().unwrap().body.as_ref(), b"last");
    // A slave refuses writes.
    let r = s
        .call(send_req("HA", 0, b"x", None, true, SerializeType::Json))
        .unwrap();
    assert_eq!(r.code, 14);
}

"""Sends messages with the official RocketMQ 5.x Python client (PyPI rocketmq-python-client)
to a Ferrocket broker's gRPC endpoint, and prints one JSON line per acknowledged send.

usage: producer.py ENDPOINT TOPIC DELAY_AT_S
"""
import json
import sys

from rocketmq import ClientConfiguration, Credentials, Message, Producer


def main():
    endpoint, topic, delay_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    producer = Producer(ClientConfiguration(endpoint, Credentials()), (topic,))
    producer.startup()
    try:
        def send(kind, body, **attrs):
            m = Message()
            m.topic = topic
            m.body = body.encode()
            for k, v in attrs.items():
                if k == "keys":
                    m.keys = v
                elif k == "props":
                    for pk, pv in v.items():
                        m.add_property(pk, pv)
                else:
                    setattr(m, k, v)
            r = producer.send(m)
            print(json.dumps({"kind": kind, "body": body, "id": r.message_id, "offset": r.offset}), flush=True)

        for i in range(5):
            send("normal", f"normal-{i}", tag="TagA", keys=f"key-{i}", props={"color": "red"})
        for i in range(3):
            send("fifo", f"fifo-{i}", tag="TagF", message_group="group-1")
        send("delay", "delayed-0", delivery_timestamp=delay_at)
    finally:
        producer.shutdown()


if __name__ == "__main__":
    main()

"""The official RocketMQ 5.x Python Producer and SimpleConsumer against a two-broker cluster,
given the gRPC endpoint of one broker only: the route must name both.

usage: cluster.py ENDPOINT TOPIC GROUP COUNT
"""
import json
import sys
import time

from rocketmq import (ClientConfiguration, Credentials, FilterExpression, Message, Producer,
                      SimpleConsumer)


def out(**kv):
    print(json.dumps(kv), flush=True)


def main():
    endpoint, topic, group, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    config = ClientConfiguration(endpoint, Credentials())
    producer = Producer(config, (topic,))
    producer.startup()
    try:
        for i in range(count):
            m = Message()
            m.topic = topic
            m.body = f"c-{i}".encode()
            m.tag = "C"
            r = producer.send(m)
            out(event="sent", body=f"c-{i}", id=r.message_id)
    finally:
        producer.shutdown()
    consumer = SimpleConsumer(config, group, {topic: FilterExpression("C")}, await_duration=2)
    consumer.startup()
    try:
        seen = set()
        end = time.time() + 40
        while len(seen) < count and time.time() < end:
            for m in consumer.receive(32, 15) or []:
                seen.add(m.body.decode())
                out(event="received", body=m.body.decode())
                consumer.ack(m)
    finally:
        consumer.shutdown()


if __name__ == "__main__":
    main()

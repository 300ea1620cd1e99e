"""Receives with the official RocketMQ 5.x Python SimpleConsumer from a Ferrocket broker's gRPC
endpoint; prints one JSON line per event.

usage: consumer.py ENDPOINT TOPIC GROUP PHASE
  first:  receive the 4 messages tagged A (invisible 3 s); ack a-0 and a-1, extend a-2 to 60 s,
          leave a-3 to expire
  second: (after a broker restart) wait for a-3 to come back with attempt 2, ack it, then
          check nothing else is delivered
  dlq:    receive the messages tagged B (invisible 1 s) without acking, twice
  fifo:   (an orderly group) leave the first message unacked, see nothing else is delivered
          while it is in flight, then ack everything as it comes
"""
import json
import sys
import time

from rocketmq import ClientConfiguration, Credentials, FilterExpression, SimpleConsumer


def out(**kv):
    print(json.dumps(kv), flush=True)


def receive_until(consumer, want, limit_s, invisible_s):
    got = []
    end = time.time() + limit_s
    while len(got) < want and time.time() < end:
        for m in consumer.receive(32, invisible_s) or []:
            got.append(m)
    return got


def main():
    endpoint, topic, group, phase = sys.argv[1:5]
    tag = {"dlq": "B", "fifo": "F"}.get(phase, "A")
    consumer = SimpleConsumer(
        ClientConfiguration(endpoint, Credentials()),
        group,
        {topic: FilterExpression(tag)},
        await_duration=3,
    )
    consumer.startup()
    try:
        if phase == "first":
            got = receive_until(consumer, 4, 30, 3)
            for m in got:
                body = m.body.decode()
                out(event="received", body=body, attempt=m.delivery_attempt, tag=m.tag, id=m.message_id)
                if body in ("a-0", "a-1"):
                    consumer.ack(m)
                    out(event="acked", body=body)
                elif body == "a-2":
                    consumer.change_invisible_duration(m, 60)
                    out(event="extended", body=body)
        elif phase == "second":
            got = receive_until(consumer, 1, 30, 3)
            for m in got:
                out(event="received", body=m.body.decode(), attempt=m.delivery_attempt, tag=m.tag, id=m.message_id)
                consumer.ack(m)
                out(event="acked", body=m.body.decode())
            for m in consumer.receive(32, 3) or []:
                out(event="unexpected", body=m.body.decode(), attempt=m.delivery_attempt)
        elif phase == "dlq":
            got = receive_until(consumer, 2, 30, 1)
            for m in got:
                out(event="received", body=m.body.decode(), attempt=m.delivery_attempt)
            time.sleep(1.5)
            for m in consumer.receive(32, 1) or []:
                out(event="unexpected", body=m.body.decode(), attempt=m.delivery_attempt)
        elif phase == "fifo":
            # Invisible longer than the next receive's 3 s poll.
            first = receive_until(consumer, 1, 30, 6)
            for m in first:
                out(event="received", body=m.body.decode(), attempt=m.delivery_attempt)
            for m in consumer.receive(32, 2) or []:
                out(event="unexpected", body=m.body.decode(), attempt=m.delivery_attempt)
            end = time.time() + 30
            acked = 0
            while acked < 5 and time.time() < end:
                for m in consumer.receive(32, 2) or []:
                    out(event="received", body=m.body.decode(), attempt=m.delivery_attempt)
                    consumer.ack(m)
                    acked += 1
    finally:
        consumer.shutdown()


if __name__ == "__main__":
    main()

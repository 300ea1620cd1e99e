"""Consumes with the official RocketMQ 5.x Python PushConsumer from a Ferrocket broker's gRPC
endpoint. The first delivery of "p-1" fails, so it must come back; prints one JSON line per
delivery and stops once WANT messages were consumed (or after 60 s).

usage: push_consumer.py ENDPOINT TOPIC GROUP WANT
"""
import json
import sys
import threading
import time

from rocketmq import (ClientConfiguration, ConsumeResult, Credentials, FilterExpression,
                      MessageListener, PushConsumer)


PRINT = threading.Lock()


def out(**kv):
    # The listener runs on several threads: one whole line at a time.
    with PRINT:
        print(json.dumps(kv), flush=True)


class Listener(MessageListener):
    def __init__(self, want):
        self.done = set()
        self.want = want
        self.lock = threading.Lock()
        self.finished = threading.Event()

    def consume(self, message):
        body = message.body.decode()
        attempt = message.delivery_attempt
        fail = body == "p-1" and attempt == 1
        out(event="delivered", body=body, attempt=attempt, failed=fail)
        if fail:
            return ConsumeResult.FAILURE
        with self.lock:
            self.done.add(body)
            if len(self.done) >= self.want:
                self.finished.set()
        return ConsumeResult.SUCCESS


def main():
    endpoint, topic, group, want = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    listener = Listener(want)
    consumer = PushConsumer(
        ClientConfiguration(endpoint, Credentials()),
        group,
        listener,
        {topic: FilterExpression()},
    )
    consumer.startup()
    try:
        listener.finished.wait(60)
        time.sleep(0.5)  # let the last ack go out
    finally:
        consumer.shutdown()
    out(event="end", consumed=sorted(listener.done))


if __name__ == "__main__":
    main()

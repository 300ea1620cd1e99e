"""Transactions with the official RocketMQ 5.x Python Producer against a Ferrocket broker's gRPC
endpoint: one committed, one rolled back, one left open for the broker to check back (the
checker commits it). Prints one JSON line per event; waits at most 40 s for the check.

usage: transaction.py ENDPOINT TOPIC
"""
import json
import sys
import threading

from rocketmq import (ClientConfiguration, Credentials, Message, Producer, TransactionChecker,
                      TransactionResolution)


PRINT = threading.Lock()


def out(**kv):
    # The checker runs on the client's own thread: one whole line at a time.
    with PRINT:
        print(json.dumps(kv), flush=True)


class Checker(TransactionChecker):
    def __init__(self):
        self.checked = threading.Event()

    def check(self, message):
        body = message.body.decode()
        out(event="checked", body=body)
        self.checked.set()
        return TransactionResolution.COMMIT if body == "tx-open" else TransactionResolution.ROLLBACK


def main():
    endpoint, topic = sys.argv[1], sys.argv[2]
    checker = Checker()
    producer = Producer(ClientConfiguration(endpoint, Credentials()), (topic,), checker)
    producer.startup()
    try:
        for body, end in (("tx-commit", "commit"), ("tx-rollback", "rollback"), ("tx-open", None)):
            tx = producer.begin_transaction()
            m = Message()
            m.topic = topic
            m.body = body.encode()
            m.tag = "TX"
            r = producer.send(m, tx)
            out(event="sent", body=body, id=r.message_id)
            if end == "commit":
                tx.commit()
            elif end == "rollback":
                tx.rollback()
            if end:
                out(event=end, body=body)
        checker.checked.wait(40)
        out(event="end", checked=checker.checked.is_set())
    finally:
        producer.shutdown()


if __name__ == "__main__":
    main()

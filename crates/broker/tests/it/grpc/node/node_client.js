// The official RocketMQ 5.x Node.js client (npm rocketmq-client-nodejs) against a Ferrocket
// broker's gRPC endpoint: sends COUNT messages, receives them with a SimpleConsumer and acks
// them. Prints one JSON line per event.
//
// usage: node node_client.js ENDPOINT TOPIC GROUP COUNT
const { Producer, SimpleConsumer } = require('rocketmq-client-nodejs');

function out(o) {
  console.log(JSON.stringify(o));
}

async function main() {
  const [endpoint, topic, group, countText] = process.argv.slice(2);
  const count = Number(countText);
  const producer = new Producer({ endpoints: endpoint, topics: [topic] });
  await producer.startup();
  for (let i = 0; i < count; i++) {
    const r = await producer.send({ topic, tag: 'N', keys: [`k-${i}`], body: Buffer.from(`node-${i}`) });
    out({ event: 'sent', body: `node-${i}`, id: r.messageId });
  }
  const consumer = new SimpleConsumer({
    consumerGroup: group,
    endpoints: endpoint,
    subscriptions: new Map().set(topic, 'N'),
    awaitDuration: 3000,
  });
  await consumer.startup();
  const seen = new Set();
  const end = Date.now() + 30000;
  while (seen.size < count && Date.now() < end) {
    const messages = await consumer.receive(32, 10000);
    for (const m of messages) {
      const body = m.body.toString();
      out({ event: 'received', body, id: m.messageId, attempt: m.deliveryAttempt, tag: m.tag });
      await consumer.ack(m);
      seen.add(body);
    }
  }
  out({ event: 'end', received: seen.size });
  await consumer.shutdown();
  await producer.shutdown();
}

main().then(() => process.exit(0), (e) => {
  console.error(e);
  process.exit(1);
});

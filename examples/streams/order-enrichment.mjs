// Order enrichment by a stream-table join. `customers` is a table (key: customer id, value: JSON
// { name, tier }); `orders` a stream keyed by order id with JSON { customerId, amount }. Orders are
// re-keyed by customer (through a repartition topic, so they meet their customer's partition of
// the table) and joined; the result goes to `orders-enriched`. Orders of unknown customers are
// kept by the left join with customer null.
//
//   node examples/streams/order-enrichment.mjs          run until Ctrl-C
//   node examples/streams/order-enrichment.mjs --demo   load customers, write orders, print the enriched ones, exit
import { Serdes, SkeinStreams, StreamsBuilder } from '@skein/streams';
import { client, closeOnSignal, coordinator, demo, ensureTopic, readTopic, until } from './common.mjs';

const json = Serdes.JSON();
// A demo run uses topics of its own.
const suffix = demo ? `-demo-${process.pid}` : '';
const [customersTopic, ordersTopic, enrichedTopic] = ['customers', 'orders', 'orders-enriched'].map((t) => t + suffix);
const builder = new StreamsBuilder();
const customers = builder.table(customersTopic, { valueSerde: json }, { storeName: 'customers' });
builder
  .stream(ordersTopic, { valueSerde: json })
  .selectKey((_orderId, order) => order.customerId)
  .leftJoin(customers, (order, customer) => ({ ...order, customer: customer?.name ?? null, tier: customer?.tier ?? null }), json)
  .to(enrichedTopic, { valueSerde: json });

for (const t of [customersTopic, ordersTopic, enrichedTopic]) await ensureTopic(t, 3);
const app = new SkeinStreams(builder.build(), client, { applicationId: demo ? `enrich-demo-${process.pid}` : 'enrich', coordinator });
closeOnSignal(app);
await app.start();

if (demo) {
  const run = `r${process.pid}`;
  const producer = client.producer();
  await producer.send(customersTopic, [
    { key: `${run}-c1`, value: JSON.stringify({ name: 'Ada', tier: 'gold' }) },
    { key: `${run}-c2`, value: JSON.stringify({ name: 'Linus', tier: 'silver' }) },
  ]);
  // The table must have them before the orders arrive (a stream-table join reads the table as it is now).
  await until(() => app.query('customers', `${run}-c2`, Serdes.String(), json) !== undefined);
  await producer.send(ordersTopic, [
    { key: `${run}-o1`, value: JSON.stringify({ customerId: `${run}-c1`, amount: 30 }) },
    { key: `${run}-o2`, value: JSON.stringify({ customerId: `${run}-c2`, amount: 12 }) },
    { key: `${run}-o3`, value: JSON.stringify({ customerId: `${run}-c9`, amount: 99 }) },
  ]);
  await producer.close();
  const mine = async () => (await readTopic(enrichedTopic)).map((r) => JSON.parse(r.value.toString())).filter((o) => o.customerId.startsWith(run));
  await until(async () => (await mine()).length >= 3);
  for (const o of (await mine()).sort((a, b) => a.amount - b.amount)) console.log(`${o.customerId.slice(run.length + 1)} ${o.amount} ${o.customer} ${o.tier}`);
  await app.close();
  client.close();
}

// Init step for brokers: writes the node's topology.kubernetes.io/zone label to $RACK_FILE (empty
// when the label or the API is missing), read by the broker's --rack. Runs with `node` from the
// Skein image itself, so no extra image is pulled; uses the pod's service account (get nodes).
// CommonJS and dependency-free on purpose. test/k8s-manifests.test.ts runs it against a fake API.
const fs = require('node:fs');
const https = require('node:https');

const sa = process.env.SA_DIR || '/var/run/secrets/kubernetes.io/serviceaccount';
const out = process.env.RACK_FILE || '/rack/zone';
const done = (zone, why) => {
  fs.writeFileSync(out, zone);
  console.log(zone ? `rack: ${zone}` : `rack: none (${why})`);
  process.exit(0); // never block the broker: no rack only makes placement zone-unaware
};
try {
  const req = https.get({
    host: process.env.KUBERNETES_SERVICE_HOST || 'kubernetes.default.svc',
    port: process.env.KUBERNETES_SERVICE_PORT || 443,
    path: `/api/v1/nodes/${encodeURIComponent(process.env.NODE_NAME || '')}`,
    ca: fs.readFileSync(`${sa}/ca.crt`),
    headers: { Authorization: `Bearer ${fs.readFileSync(`${sa}/token`, 'utf8').trim()}` },
    timeout: 10_000,
  }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c) => { body += c; });
    res.on('end', () => {
      if (res.statusCode !== 200) return done('', `GET node: HTTP ${res.statusCode}`);
      try {
        done(JSON.parse(body).metadata?.labels?.['topology.kubernetes.io/zone'] ?? '', 'node has no zone label');
      } catch (err) {
        done('', `bad response: ${err.message}`);
      }
    });
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (err) => done('', err.message));
} catch (err) {
  done('', err.message);
}

/**
 * A small evaluator of Kubernetes NetworkPolicy (networking.k8s.io/v1) semantics, for checking
 * rendered manifests offline (test/k8s-manifests.test.ts): does the cluster admit a connection
 * from one peer to a port of another under a set of policies?
 *
 * The rules it implements, from the API reference:
 * - a pod is isolated for ingress (egress) when some policy in its namespace selects it with
 *   Ingress (Egress) in its policyTypes; policyTypes left out means Ingress, plus Egress when the
 *   policy has an egress section; an isolated pod admits only what some selecting policy allows
 *   (policies add up; there is no deny rule);
 * - a connection needs both the source's egress and the destination's ingress to admit it;
 * - a rule with no `from`/`to` (or an empty list) matches every peer; with no `ports`, every port;
 * - a peer with podSelector alone means pods of the policy's namespace; namespaceSelector alone
 *   means every pod of the matching namespaces; both means the matching pods in those namespaces;
 *   ipBlock matches addresses outside the pod network here (no CIDR arithmetic: the manifests use
 *   none, and a peer not in the pod network is modelled as an address);
 * - a named port matches the destination container port of that name; protocol defaults to TCP.
 * Not modelled: endPort ranges beyond the simple case, ipBlock CIDRs, traffic from the node (always
 * admitted: kubelet probes), hostNetwork pods.
 */

export type Labels = Record<string, string>;
export interface LabelSelector {
  matchLabels?: Labels;
  matchExpressions?: Array<{ key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }>;
}
interface PolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr: string; except?: string[] };
}
interface PolicyPort {
  port?: number | string;
  endPort?: number;
  protocol?: string;
}
export interface NetworkPolicy {
  metadata: { name: string; namespace?: string };
  spec: {
    podSelector: LabelSelector;
    policyTypes?: Array<'Ingress' | 'Egress'>;
    ingress?: Array<{ from?: PolicyPeer[]; ports?: PolicyPort[] }>;
    egress?: Array<{ to?: PolicyPeer[]; ports?: PolicyPort[] }>;
  };
}

/** A pod (with the namespace's labels) or an address outside the pod network. */
export type Peer = { kind: 'pod'; name: string; namespace: string; namespaceLabels: Labels; labels: Labels } | { kind: 'address'; name: string };
/** A destination port: its number, the container port's name if any, its protocol. */
export interface Port {
  number: number;
  name?: string;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
}

export function selects(selector: LabelSelector | undefined, labels: Labels): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const ok =
      e.operator === 'In'
        ? has && (e.values ?? []).includes(labels[e.key]!)
        : e.operator === 'NotIn'
          ? !has || !(e.values ?? []).includes(labels[e.key]!)
          : e.operator === 'Exists'
            ? has
            : !has;
    if (!ok) return false;
  }
  return true;
}

function peerMatches(rule: PolicyPeer, peer: Peer, policyNamespace: string): boolean {
  if (rule.ipBlock) return peer.kind === 'address';
  if (peer.kind !== 'pod') return false;
  if (rule.namespaceSelector) {
    if (!selects(rule.namespaceSelector, peer.namespaceLabels)) return false;
  } else if (peer.namespace !== policyNamespace) {
    return false;
  }
  return selects(rule.podSelector, peer.labels);
}

function portMatches(ports: PolicyPort[] | undefined, port: Port): boolean {
  if (!ports || ports.length === 0) return true;
  return ports.some((p) => {
    if ((p.protocol ?? 'TCP') !== (port.protocol ?? 'TCP')) return false;
    if (p.port === undefined) return true;
    if (typeof p.port === 'string') return p.port === port.name;
    return p.endPort !== undefined ? port.number >= p.port && port.number <= p.endPort : port.number === p.port;
  });
}

const typesOf = (p: NetworkPolicy) => p.spec.policyTypes ?? (p.spec.egress ? ['Ingress', 'Egress'] : ['Ingress']);
const namespaceOf = (p: NetworkPolicy, fallback: string) => p.metadata.namespace ?? fallback;

/** Whether `dst` (a pod) admits a connection from `src` to `port` (its ingress side alone). */
export function ingressAdmits(policies: NetworkPolicy[], src: Peer, dst: Extract<Peer, { kind: 'pod' }>, port: Port): boolean {
  const applying = policies.filter(
    (p) => namespaceOf(p, dst.namespace) === dst.namespace && typesOf(p).includes('Ingress') && selects(p.spec.podSelector, dst.labels),
  );
  if (applying.length === 0) return true;
  return applying.some((p) =>
    (p.spec.ingress ?? []).some(
      (r) => (!r.from || r.from.length === 0 || r.from.some((f) => peerMatches(f, src, dst.namespace))) && portMatches(r.ports, port),
    ),
  );
}

/** Whether `src` (a pod) may open a connection to `dst` on `port` (its egress side alone). */
export function egressAdmits(policies: NetworkPolicy[], src: Extract<Peer, { kind: 'pod' }>, dst: Peer, port: Port): boolean {
  const applying = policies.filter(
    (p) => namespaceOf(p, src.namespace) === src.namespace && typesOf(p).includes('Egress') && selects(p.spec.podSelector, src.labels),
  );
  if (applying.length === 0) return true;
  return applying.some((p) =>
    (p.spec.egress ?? []).some((r) => (!r.to || r.to.length === 0 || r.to.some((t) => peerMatches(t, dst, src.namespace))) && portMatches(r.ports, port)),
  );
}

/** Whether the connection is admitted: the source's egress (if a pod) and the destination's ingress (if a pod). */
export function admits(policies: NetworkPolicy[], src: Peer, dst: Peer, port: Port): boolean {
  return (src.kind !== 'pod' || egressAdmits(policies, src, dst, port)) && (dst.kind !== 'pod' || ingressAdmits(policies, src, dst, port));
}

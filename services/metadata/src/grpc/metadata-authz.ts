/**
 * What each MetadataService RPC needs from the authorizer (enforced by the shell: libs/common
 * security/enforcement.ts), after Kafka: creating a topic needs create on the cluster or on the
 * topic; deleting, altering and describing a topic the matching topic operation; listing answers
 * only what the caller may describe; managing ACLs needs alter on the cluster and listing them
 * describe; leader elections and reassignments alter on the cluster. The calls a broker makes
 * about itself (register, heartbeat, AlterPartition, producer id blocks) need an internal
 * principal that maps to that very broker id; the other service calls are internal.
 */
import type { Action } from '@skein/common/security/authorizer.js';
import { type AuthorizeMap, type AuthzPrincipal, clusterAction, requireBrokerIdentity } from '@skein/common/security/enforcement.js';

const topic = (resourceName: string, operation: Action['operation']): Action => ({ resourceType: 'topic', resourceName, operation });
type BrokerRequest = { brokerId: number };

export function metadataAuthorizeMap(brokerPrincipalPattern: RegExp): AuthorizeMap {
  const asBroker = (req: BrokerRequest, p: AuthzPrincipal) => requireBrokerIdentity(p, req.brokerId, brokerPrincipalPattern);
  return {
    registerBroker: asBroker,
    brokerHeartbeat: asBroker,
    unregisterBroker: asBroker,
    alterPartition: asBroker,
    allocateProducerIds: asBroker,

    createTopic: (req: { name: string }) => [[clusterAction('create'), topic(req.name, 'create')]],
    deleteTopic: (req: { name: string }) => [topic(req.name, 'delete')],
    listTopics: 'any',
    describeTopic: (req: { name: string }) => [topic(req.name, 'describe')],
    alterTopicConfigs: (req: { name: string }) => [topic(req.name, 'alter_configs')],
    createPartitions: (req: { name: string }) => [topic(req.name, 'alter')],
    getClusterMetadata: 'any',
    // The brokers' feed of every partition state: internal.
    watchMetadata: () => [clusterAction('cluster_action')],

    electPreferredLeaders: () => [clusterAction('alter')],
    reassignPartitions: () => [clusterAction('alter')],

    registerServiceInstance: () => [clusterAction('cluster_action')],
    serviceInstanceHeartbeat: () => [clusterAction('cluster_action')],
    unregisterServiceInstance: () => [clusterAction('cluster_action')],
    // Clients find group coordinators here before they can do anything else.
    findServiceInstances: 'any',

    createAcls: () => [clusterAction('alter')],
    deleteAcls: () => [clusterAction('alter')],
    describeAcls: () => [clusterAction('describe')],
    watchAcls: () => [clusterAction('cluster_action')],
  };
}

/**
 * What each ConnectService RPC needs from the authorizer (enforced by the shell: libs/common
 * security/enforcement.ts), on resource type `connector` named by the connector: creating needs
 * create on it (or create on the cluster, as Kafka lets cluster create stand for topic create);
 * updating, pausing, resuming and restarting (connector or task) alter; deleting delete; reading a
 * connector or its status describe (which alter and delete imply). ListConnectors answers only the
 * connectors the caller may describe (the handler filters); ValidateConfig names no connector, so it
 * needs describe on some connector; ListPlugins says nothing about any connector and is open.
 */
import { ANY_RESOURCE, type Action } from '@skein/common/security/authorizer.js';
import { type AuthorizeMap, clusterAction } from '@skein/common/security/enforcement.js';

export const connectorAction = (resourceName: string, operation: Action['operation']): Action => ({ resourceType: 'connector', resourceName, operation });

export const connectAuthorizeMap: AuthorizeMap = {
  // Either suffices; the connector (the last option) is the one a denial names.
  createConnector: (req: { name: string }) => [[clusterAction('create'), connectorAction(req.name, 'create')]],
  updateConnector: (req: { name: string }) => [connectorAction(req.name, 'alter')],
  deleteConnector: (req: { name: string }) => [connectorAction(req.name, 'delete')],
  pauseConnector: (req: { name: string }) => [connectorAction(req.name, 'alter')],
  resumeConnector: (req: { name: string }) => [connectorAction(req.name, 'alter')],
  restartConnector: (req: { name: string }) => [connectorAction(req.name, 'alter')],
  restartTask: (req: { name: string }) => [connectorAction(req.name, 'alter')],
  getConnector: (req: { name: string }) => [connectorAction(req.name, 'describe')],
  getConnectorStatus: (req: { name: string }) => [connectorAction(req.name, 'describe')],
  listConnectors: 'any',
  validateConfig: () => [connectorAction(ANY_RESOURCE, 'describe')],
  listPlugins: 'any',
};

export const METADATA_ENTRY = new URL("../../services/metadata/dist/main.js", import.meta.url).pathname;
export const BROKER_ENTRY = new URL("../../services/broker/dist/main.js", import.meta.url).pathname;
export const CLI_ENTRY = new URL("../../libs/cli/dist/main.js", import.meta.url).pathname;
export const COORDINATOR_ENTRY = new URL("../../services/group-coordinator/dist/main.js", import.meta.url).pathname;
export const CONNECT_ENTRY = new URL("../../services/connect/dist/main.js", import.meta.url).pathname;

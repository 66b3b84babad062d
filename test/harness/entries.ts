export const METADATA_ENTRY = new URL("../../services/metadata/dist/main.js", import.meta.url).pathname;

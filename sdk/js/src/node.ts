// @luxfi/session/node: what only runs in Node.js.
export { FileStore, StoreLockedError } from './messenger/filestore.js';

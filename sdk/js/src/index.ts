// @luxfi/session: the TypeScript SDK of SessionVM.
export * from './bytes.js';
export * from './errors.js';
export * from './identity.js';
export * from './keyfile.js';
export * from './ids.js';
export * from './limits.js';
export * from './tx.js';
export * from './work.js';
export * from './verify.js';
export * from './seal.js';
export { displayText, MAX_NODE_MESSAGE } from './text.js';
export * from './envelope.js';
export * from './rpc.js';
export * from './messaging.js';
export * as chat from './chat/index.js';
export * from './messenger/index.js';

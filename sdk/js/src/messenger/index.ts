// The Messenger (the forward-secret protocol over a node it does not
// trust) and its stores. FileStore (Node.js) is exported from
// '@luxfi/session/node'.
export * from './messenger.js';
export * from './node.js';
export * from './sdknode.js';
export * from './stores.js';

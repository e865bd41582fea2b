// The forward-secret messaging protocol of sessions (docs/protocol.md):
// devices, conversations, the store interface and the errors. The wire
// format, the derivations and the ratchet are internal.

export * from './errors.js';
export * from './limits.js';
export { ChatDevice, claimsOf, type ChatSession, type Directory, type OneTimePrekey, type PrekeyBundle, type PrekeyStatus, type PrekeyUpload, type SignedPrekey } from './device.js';
export { Conversation, type Claim, type Delivery, type HistoryEntry, type OpenedChatMessage, type Outgoing } from './conversation.js';
export { type ChatStore, EncryptedStore, MemoryStore } from './store.js';
export { STATE_VERSION } from './state.js';

// The forward-secret messaging protocol of sessions (docs/protocol.md):
// devices, conversations, the store interface and the errors. The wire
// format, the derivations and the ratchet are internal.

export * from './errors.js';
export * from './limits.js';
export { ChatDevice, sessionClaimsOf, type ChatSession, type Directory, type OneTimePrekey, type PrekeyBundle, type PrekeyClaimed, type PrekeyStatus, type PrekeyUpload, type SignedPrekey } from './device.js';
export { Conversation, type Claim, type Delivery, type HistoryEntry, type OpenedChatMessage, type Outgoing, type SendOptions } from './conversation.js';
export { type ChatStore, EncryptedStore, MemoryStore } from './store.js';
export { STATE_VERSION } from './state.js';

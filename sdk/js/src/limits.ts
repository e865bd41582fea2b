// Protocol bounds (Go: package config) and API bounds (package service).

/** Largest message or post ciphertext. */
export const MAX_CIPHERTEXT_SIZE = 64 << 10;
/** Largest public session metadata. */
export const MAX_METADATA_SIZE = 1 << 10;
/** Participants of a session, creator included. */
export const MAX_PARTICIPANTS = 32;
/** Channel names: 1 to 64 bytes of UTF-8 without control characters. */
export const MAX_CHANNEL_NAME_SIZE = 64;
/** Members of one channel. */
export const MAX_CHANNEL_MEMBERS = 1024;
/** Largest signed transaction. */
export const MAX_TX_SIZE = 80 << 10;
/** Largest page of getMessages / getInbox / getChannel members. */
export const MAX_PAGE_SIZE = 1000;
/** Largest request body the node accepts. */
export const MAX_BODY_SIZE = 1 << 20;
/** Largest response body this client reads (a full page of the largest messages is ~90 MB of base64). */
export const MAX_RESPONSE_SIZE = 128 << 20;
/** Recipients of one Seal envelope. */
export const MAX_RECIPIENTS = 1024;

// Consent, prekeys and moderation (Go: package config; docs/chain.md).

/** One-time prekeys in one PublishPrekeys transaction. */
export const MAX_PREKEYS_PER_TX = 32;
/** Unclaimed one-time prekeys one identity may hold on chain. */
export const MAX_UNCLAIMED_PREKEYS = 100;
/** A signed prekey expires at most this long after the block that publishes it (ms). */
export const MAX_SIGNED_PREKEY_LIFETIME_MS = 30 * 24 * 3600 * 1000;
/** Messages of a request that reach the inbox when it is accepted. */
export const REQUEST_BACKFILL = 8;
/** Contacts and blocks one identity may hold. */
export const MAX_CONTACTS = 10_000;
/** Members named by one ModerateChannel transaction. */
export const MAX_MODERATION_ITEMS = 64;
/** Posts named by one DeletePosts transaction. */
export const MAX_DELETE_ITEMS = 64;
/** Outstanding invites of one channel. */
export const MAX_CHANNEL_INVITES = 1024;

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

// The bounds of the messaging protocol (docs/protocol.md, section 9), in one
// place. Each bound that refuses something has its own error (errors.ts).

/** A sender steps after this many messages in one chain; a continue with n >= it is malformed. */
export const MAX_CHAIN_MESSAGES = 50;
/** A sender steps on its first message this long (ms) after its chain started. */
export const MAX_CHAIN_AGE_MS = 24 * 60 * 60 * 1000;
/** Keys (or slots) one message may skip at once. */
export const MAX_SKIP = 100;
/** Skipped keys and slots kept per pair; the pair's oldest (first skipped) go first. */
export const MAX_SKIPPED_KEYS = 250;
/** Skipped keys, superseded own chains and idle trees are deleted after this long (ms). */
export const MAX_SKIP_AGE_MS = 7 * 24 * 60 * 60 * 1000;
/** Own chains kept per tree (the oldest go first). */
export const MAX_OWN_CHAINS = 16;
/** Received chains kept per tree (the oldest go first). */
export const MAX_PEER_CHAINS = 16;
/** Trees whose state is kept per pair (the least preferred non-current one goes first). */
export const MAX_TREES = 4;
/** Trees known per pair (tombstones included); a handshake beyond is refused. */
export const MAX_HANDSHAKES = 16;
/** Own handshakes with one peer in one session that did not die (the chain's bound on claims per pair). */
export const MAX_HANDSHAKES_PER_PEER = 4;
/** A missing peer chain is given up after this many later chains of that peer arrived. */
export const MISSING_CHAIN_GIVE_UP = 8;
/** Envelopes waiting for confirmation; Send refuses beyond. */
export const MAX_OUTBOX = 64;
/** Largest plaintext of a message. */
export const MAX_PLAINTEXT_SIZE = 16384;
/** Largest envelope (the chain's ciphertext bound). */
export const MAX_ENVELOPE_SIZE = 65536;
/** Participants of a session (the chain's bound). */
export const MAX_PARTICIPANTS = 32;
/** Unclaimed one-time prekey secrets held; no more are generated beyond. */
export const MAX_ONE_TIME_PREKEYS = 256;
/** Claimed one-time prekey secrets held; the earliest deadlines go first. */
export const MAX_CLAIMED_PREKEYS = 256;
/** One-time prekeys per published batch (the chain's bound). */
export const MAX_PREKEY_BATCH = 32;
/** A signed prekey expires this long (ms) after it was made. */
export const SIGNED_PREKEY_LIFETIME_MS = 7 * 24 * 60 * 60 * 1000;
/** A signed prekey's secret is kept this long (ms) after it expired. */
export const SIGNED_PREKEY_GRACE_MS = 14 * 24 * 60 * 60 * 1000;
/** Publish a new signed prekey when the current one has less than this left (ms). */
export const SIGNED_PREKEY_RENEW_MS = 2 * 24 * 60 * 60 * 1000;
/** Replenish one-time prekeys when fewer than this many are unclaimed on chain. */
export const ONE_TIME_PREKEY_LOW_WATER = 20;
/** The chain keeps at most this many unclaimed one-time prekeys per identity. */
export const MAX_UNCLAIMED_ON_CHAIN = 100;
/** A handshake whose tree is unknown cannot merely be late once this many later positions were delivered. */
export const UNKNOWN_TREE_WAIT = 16;
/** Dead, superseded and landed own envelopes remembered per conversation (a local bound). */
export const MAX_REMEMBERED_ENVELOPES = 256;
/** A ratchet message is due after this many content messages received since the last send (section 7.6). */
export const RATCHET_AFTER_MESSAGES = 50;
/** ... or this long (ms) after the first message received since the last send. */
export const RATCHET_AFTER_MS = 24 * 60 * 60 * 1000;
/** Deliveries kept for a retry after "chain not started" (section 10.3), per conversation. */
export const MAX_RETRY = 256;

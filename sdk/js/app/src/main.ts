// The SessionVM web messenger. Keys never leave the browser: the identity
// is kept as a passphrase-encrypted identity file in IndexedDB, every
// transaction is signed here, and messages are sealed and opened here.

import encodeQR from 'qr';
import {
  Client,
  fromHex,
  generateIdentity,
  type Identity,
  identityFromSeed,
  InvalidIdentityFileError,
  loadIdentityFile,
  loadPublicIdentityFile,
  SealCipher,
  Messenger as ProtocolMessenger,
  SdkNode,
  IndexedDBStore,
  chat,
  saveIdentityFile,
  SessionError,
  toHex,
  TransportError,
  upgradeIdentityFile,
  WrongPassphraseError,
  isID,
  JoinPolicy,
  ModerationAction,
  NotParticipantError,
  RateLimitedError,
  WorkAbortedError,
} from '../../src/index.js';
import { clear, formatTime, h, shortId } from './dom.js';
import { type ChannelDetails, type ChannelInfo, Messenger, type Thread, UserError } from './messenger.js';
import { CHAT_DB_NAME, chatStoreKey, forgetEverything, readIdentityFile, SecureStore, StorageUnavailableError, writeIdentityFile } from './vault.js';
import { poolSize, workerPoolSolver, workerScrypt } from './workerclient.js';

const root = document.getElementById('app')!;
const client = new Client(new URL('rpc', document.baseURI).href, { timeoutMs: 15_000 });
let messenger: Messenger | undefined;

/** The message to show a person for an error. */
function describe(e: unknown): string {
  if (e instanceof UserError) return e.message;
  if (e instanceof WrongPassphraseError) return 'Wrong passphrase.';
  if (e instanceof TransportError) return `Cannot reach the node at ${client.url}. Is sessiond running?`;
  if (e instanceof NotParticipantError) return 'You are not a participant (or no longer a member) here.';
  if (e instanceof RateLimitedError) return `The chain limits how often one identity may do this; try again later. (${e.rpcMessage})`;
  if (e instanceof StorageUnavailableError) return e.message;
  if (e instanceof SessionError) return e.message;
  return e instanceof Error ? e.message : String(e);
}

function screen(testid: string, ...children: (Node | string | false | undefined)[]): void {
  clear(root);
  root.append(h('main', { class: 'screen', testid }, ...children));
}

/** A form whose submit handler runs with the button disabled and errors shown in place. */
/** Shows what a form is doing; with a fraction (0 to 1), a progress bar too. */
type Status = (s: string, fraction?: number) => void;

function form(testid: string, fields: Node[], label: string, onSubmit: (status: Status) => Promise<void>): HTMLFormElement {
  const err = h('p', { class: 'error', role: 'alert', testid: `${testid}-error` });
  const info = h('p', { class: 'info', testid: `${testid}-status` });
  const bar = h('progress', { max: 1, value: 0, hidden: true, testid: `${testid}-progress` });
  const button = h('button', { type: 'submit', class: 'primary', testid: `${testid}-submit` }, label);
  const f = h('form', { class: 'form', testid }, ...fields, button, info, bar, err);
  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    button.disabled = true;
    try {
      await onSubmit((s, fraction) => {
        info.textContent = s;
        bar.hidden = fraction === undefined;
        if (fraction !== undefined) bar.value = fraction;
      });
    } catch (x) {
      info.textContent = '';
      err.textContent = describe(x);
    } finally {
      bar.hidden = true;
      button.disabled = false;
    }
  });
  return f;
}

/**
 * scrypt of an identity file in the worker, its progress shown: N = 2^17
 * (what sessionctl writes) takes one to a few seconds, longer on a phone.
 */
function keyKdf(status: Status, what: string) {
  status(what, 0);
  return workerScrypt((f) => status(what, f));
}

function field(label: string, input: HTMLElement): HTMLElement {
  return h('label', { class: 'field' }, h('span', {}, label), input);
}

function passInput(testid: string, autocomplete = 'current-password'): HTMLInputElement {
  return h('input', { type: 'password', required: true, autocomplete, testid });
}

// --- start ---------------------------------------------------------------------

async function start(): Promise<void> {
  let file: string | undefined;
  try {
    file = await readIdentityFile();
  } catch (e) {
    screen('fatal', h('h1', {}, 'SessionVM'), h('p', { class: 'error' }, describe(e)));
    return;
  }
  if (file) unlockScreen(file);
  else welcomeScreen();
}

function welcomeScreen(): void {
  screen(
    'welcome',
    h('h1', {}, 'SessionVM'),
    h('p', { class: 'lead' }, 'Post-quantum private messaging. Your keys stay in this browser, encrypted under your passphrase.'),
    h('div', { class: 'choices' },
      h('button', { class: 'primary', testid: 'choose-create', onclick: () => createScreen() }, 'Create a new identity'),
      h('button', { testid: 'choose-restore', onclick: () => restoreScreen() }, 'Restore from a backup seed'),
      h('button', { testid: 'choose-import', onclick: () => importScreen() }, 'Import a sessionctl key file'),
    ),
  );
}

function newPassphraseFields(): { fields: Node[]; read: () => string } {
  const p1 = passInput('new-passphrase', 'new-password');
  const p2 = passInput('new-passphrase-again', 'new-password');
  return {
    fields: [field('Passphrase (protects your keys in this browser)', p1), field('Passphrase again', p2)],
    read: () => {
      if (p1.value.length < 8) throw new UserError('Use a passphrase of at least 8 characters.');
      if (p1.value !== p2.value) throw new UserError('The passphrases differ.');
      return p1.value;
    },
  };
}

async function keep(identity: Identity, passphrase: string, status: Status): Promise<void> {
  const text = await saveIdentityFile(identity, passphrase, { kdf: keyKdf(status, 'Encrypting your keys (deriving a key from your passphrase)…') });
  status('Saving…');
  await writeIdentityFile(text);
}

function createScreen(): void {
  const pass = newPassphraseFields();
  screen(
    'create',
    h('h1', {}, 'New identity'),
    form('create-form', pass.fields, 'Create', async (status) => {
      const passphrase = pass.read();
      const identity = generateIdentity();
      await keep(identity, passphrase, status);
      seedScreen(identity);
    }),
    h('button', { class: 'link', onclick: () => welcomeScreen() }, 'Back'),
  );
}

/** The backup seed, shown once. */
function seedScreen(identity: Identity): void {
  const seed = toHex(identity.seed!);
  const groups = seed.match(/.{1,8}/g)!.join(' ');
  const ok = h('input', { type: 'checkbox', testid: 'seed-confirm' });
  const go = h('button', { class: 'primary', disabled: true, testid: 'seed-done', onclick: () => void enter(identity) }, 'Continue');
  ok.addEventListener('change', () => (go.disabled = !ok.checked));
  screen(
    'seed',
    h('h1', {}, 'Your backup seed'),
    h('p', {}, 'Write these 64 characters down and keep them secret. They restore your identity on any device. They are shown only now.'),
    h('pre', { class: 'seed', testid: 'seed-value' }, groups),
    h('label', { class: 'check' }, ok, ' I have written down my backup seed'),
    go,
  );
}

function restoreScreen(): void {
  const seedInput = h('textarea', { rows: 3, required: true, spellcheck: 'false', autocomplete: 'off', testid: 'restore-seed' });
  const pass = newPassphraseFields();
  screen(
    'restore',
    h('h1', {}, 'Restore from seed'),
    form('restore-form', [field('Backup seed (64 hexadecimal characters)', seedInput), ...pass.fields], 'Restore', async (status) => {
      const hex = seedInput.value.replace(/\s+/g, '').toLowerCase();
      if (!/^[0-9a-f]{64}$/.test(hex)) throw new UserError('A backup seed is 64 hexadecimal characters.');
      const passphrase = pass.read();
      const identity = identityFromSeed(fromHex(hex));
      await keep(identity, passphrase, status);
      await enter(identity);
    }),
    h('button', { class: 'link', onclick: () => welcomeScreen() }, 'Back'),
  );
}

function importScreen(): void {
  const fileInput = h('input', { type: 'file', accept: '.json,application/json', required: true, testid: 'import-file' });
  const pass = passInput('import-passphrase');
  screen(
    'import',
    h('h1', {}, 'Import a key file'),
    h('p', {}, 'The identity file sessionctl keeps (~/.sessionctl/identity.json). Its passphrase becomes your passphrase here.'),
    form('import-form', [field('Key file', fileInput), field('Its passphrase', pass)], 'Import', async (status) => {
      const f = fileInput.files?.[0];
      if (!f) throw new UserError('Choose the key file.');
      if (f.size > 64 * 1024) throw new UserError('That file is too large to be a key file.');
      const text = await f.text();
      try {
        loadPublicIdentityFile(text);
      } catch (e) {
        if (e instanceof InvalidIdentityFileError) throw new UserError('That is not a SessionVM key file.');
        throw e;
      }
      const identity = await loadIdentityFile(text, pass.value, { kdf: keyKdf(status, 'Opening the key file…') });
      // Kept no weaker than the files this app writes (an older sessionctl wrote N = 2^15).
      const up = await upgradeIdentityFile(text, identity, pass.value, { kdf: keyKdf(status, 'Encrypting your keys at the current strength…') });
      await writeIdentityFile(up ?? text);
      await enter(identity);
    }),
    h('button', { class: 'link', onclick: () => welcomeScreen() }, 'Back'),
  );
}

function unlockScreen(file: string): void {
  let who = '';
  try {
    who = loadPublicIdentityFile(file).sessionId;
  } catch {
    who = '';
  }
  const pass = passInput('unlock-passphrase');
  screen(
    'unlock',
    h('h1', {}, 'Unlock'),
    who && h('p', { class: 'mono small' }, who),
    form('unlock-form', [field('Passphrase', pass)], 'Unlock', async (status) => {
      const identity = await loadIdentityFile(file, pass.value, { kdf: keyKdf(status, 'Unlocking…') });
      const up = await upgradeIdentityFile(file, identity, pass.value, { kdf: keyKdf(status, 'Encrypting your keys at the current strength…') });
      if (up) await writeIdentityFile(up);
      await enter(identity);
    }),
    h('button', {
      class: 'link danger',
      testid: 'forget',
      onclick: async () => {
        if (confirm('Delete this identity and all history from this browser? Without its backup seed it is lost.')) {
          await forgetEverything();
          welcomeScreen();
        }
      },
    }, 'Forget this identity'),
  );
}

// --- the messenger ---------------------------------------------------------------
// --- the messenger ---------------------------------------------------------------

type Tab = 'chats' | 'contacts' | 'channels';
let tab: Tab = 'chats';
let openId: string | undefined;
let registerAbort: AbortController | undefined;

async function enter(identity: Identity): Promise<void> {
  const store = new SecureStore(identity);
  // The forward-secret protocol's state: IndexedDB, every record encrypted under a key of the identity.
  const protocol = async () =>
    ProtocolMessenger.open(new SdkNode(client, identity), identity, new chat.EncryptedStore(await IndexedDBStore.open(CHAT_DB_NAME), chatStoreKey(identity)));
  messenger = new Messenger(client, identity, store, new SealCipher(), protocol, workerPoolSolver);
  await messenger.load();
  messenger.addEventListener('change', () => render());
  render();
  void messenger.checkRegistered();
  messenger.start();
}

function lock(): void {
  registerAbort?.abort();
  messenger?.close();
  messenger = undefined;
  openId = undefined;
  details.clear();
  void start();
}

let composer: HTMLTextAreaElement | undefined;
/** The last error of the open thread's actions, kept across re-renders. */
let threadError = '';

function showThreadError(e: unknown): void {
  threadError = describe(e);
  render();
}
let composerFor: string | undefined;

/** Runs an action of the open thread, showing its error in the thread. */
async function action(f: () => Promise<unknown>): Promise<void> {
  threadError = '';
  try {
    await f();
  } catch (e) {
    showThreadError(e);
  }
}

function render(): void {
  const m = messenger;
  if (!m) return;
  // Keep focus and the draft across re-renders.
  const hadFocus = document.activeElement === composer;
  const active = document.activeElement as HTMLElement | null;
  const activeTestid = active?.dataset?.testid;
  const listScroll = document.querySelector('.messages')?.scrollTop;
  const atBottom = (() => {
    const el = document.querySelector('.messages');
    return !el || el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  })();

  // Drafts in forms (not passphrases) and open sections survive a re-render.
  const drafts = new Map<string, string | boolean>();
  root.querySelectorAll<HTMLInputElement | HTMLTextAreaElement>('input[data-testid], textarea[data-testid]').forEach((el) => {
    if (el.type === 'password' || el === composer) return;
    drafts.set(el.dataset.testid!, el instanceof HTMLInputElement && el.type === 'checkbox' ? el.checked : el.value);
  });
  const opened = new Set<string>();
  root.querySelectorAll<HTMLDetailsElement>('details[open] > summary[data-testid]').forEach((el) => opened.add(el.dataset.testid!));

  clear(root);
  const shell = h('div', { class: `shell ${openId ? 'has-thread' : ''}`, testid: 'main' });
  shell.append(header(m), banner(m));
  const body = h('div', { class: 'body' });
  body.append(sidebar(m));
  if (openId) body.append(threadView(m, openId));
  else body.append(h('section', { class: 'thread empty' }, h('p', {}, 'Pick a conversation, or start one.')));
  shell.append(body);
  root.append(shell);
  for (const [id, v] of drafts) {
    const el = root.querySelector<HTMLInputElement>(`[data-testid="${CSS.escape(id)}"]`);
    if (!el) continue;
    if (typeof v === 'boolean') el.checked = v;
    else el.value = v;
  }
  for (const id of opened) {
    const el = root.querySelector<HTMLElement>(`[data-testid="${CSS.escape(id)}"]`)?.parentElement;
    if (el instanceof HTMLDetailsElement) el.open = true;
  }

  if (hadFocus && composer) composer.focus();
  else if (activeTestid) {
    root.querySelector<HTMLElement>(`[data-testid="${CSS.escape(activeTestid)}"]`)?.focus();
  }
  const list = document.querySelector('.messages');
  if (list) list.scrollTop = atBottom ? list.scrollHeight : (listScroll ?? list.scrollHeight);
}

function header(m: Messenger): HTMLElement {
  return h('header', { class: 'top' },
    h('span', { class: 'brand' }, 'SessionVM'),
    h('button', { class: 'me mono', testid: 'my-id', title: 'Your Session ID', onclick: () => idDialog(m) }, shortId(m.me)),
    h('span', { class: `dot ${m.online === false ? 'off' : m.online ? 'on' : ''}`, title: m.online === false ? 'node unreachable' : 'node reachable', testid: 'node-status' }),
    h('button', { class: 'link', testid: 'lock', onclick: () => lock() }, 'Lock'),
  );
}

let registerError = '';

function banner(m: Messenger): Node {
  const wrap = h('div', { class: 'banners' });
  if (m.online === false) wrap.append(h('div', { class: 'banner error', role: 'alert', testid: 'node-error' }, m.nodeError));
  const reg = m.registering;
  if (reg) {
    const s = reg.stats;
    const expected = reg.expectedArgon2 ?? 1;
    const text =
      reg.stage === 'sending'
        ? 'Sending your registration…'
        : `Proof of work for your registration: ${s?.argon2 ?? 0} of about ${expected} Argon2id tries (${poolSize()} workers). This takes a few seconds to a minute; it is what keeps this free chain from being flooded.`;
    wrap.append(h('div', { class: 'banner', testid: 'register-banner' },
      h('span', { testid: 'register-progress' }, text), ' ',
      reg.stage === 'work' ? h('progress', { max: expected, value: Math.min(s?.argon2 ?? 0, expected - 0.5) }) : null, ' ',
      reg.stage === 'work' ? h('button', { testid: 'register-cancel', onclick: () => registerAbort?.abort() }, 'Cancel') : null,
    ));
  } else if (!m.state.registered && m.online !== false) {
    const b = h('button', {
      class: 'primary',
      testid: 'register',
      onclick: async () => {
        registerError = '';
        registerAbort = new AbortController();
        try {
          await m.register(registerAbort.signal);
        } catch (e) {
          registerError = e instanceof WorkAbortedError ? 'Registration cancelled.' : describe(e);
          render();
        }
      },
    }, 'Register');
    wrap.append(h('div', { class: 'banner', testid: 'register-banner' }, 'Your identity is not on the chain yet: others cannot reach you. ', b, ' ',
      h('span', { class: 'error', testid: 'register-error' }, registerError)));
  }
  return wrap;
}

function idDialog(m: Messenger): void {
  const dlg = h('dialog', { class: 'dialog', testid: 'id-dialog' },
    h('h2', {}, 'Your Session ID'),
    h('img', { class: 'qr', alt: 'QR code of your Session ID', src: encodeQR(m.me, 'data-url', { ecc: 'medium', scale: 4, border: 4 }), testid: 'qr' }),
    h('p', { class: 'mono wrap', testid: 'full-id' }, m.me),
    h('div', { class: 'row' },
      h('button', { onclick: () => void navigator.clipboard?.writeText(m.me) }, 'Copy'),
      h('button', { class: 'primary', onclick: () => { dlg.close(); dlg.remove(); } }, 'Close'),
    ),
  );
  document.body.append(dlg);
  dlg.showModal();
}

function sidebar(m: Messenger): HTMLElement {
  const unread = m.totalUnread();
  const requests = m.requests().length;
  const tabs = h('nav', { class: 'tabs' },
    tabButton('chats', unread ? `Chats (${unread})` : 'Chats', requests ? h('span', { class: 'badge', testid: 'requests-count', title: 'message requests' }, requests) : null),
    tabButton('contacts', 'Contacts'),
    tabButton('channels', 'Channels'),
  );
  const content = tab === 'chats' ? chatsTab(m) : tab === 'contacts' ? contactsTab(m) : channelsTab(m);
  return h('aside', { class: 'side' }, tabs, content);
}

function tabButton(t: Tab, label: string, extra: Node | null = null): HTMLElement {
  return h('button', { class: `tab ${tab === t ? 'active' : ''}`, testid: `tab-${t}`, onclick: () => { tab = t; render(); } }, label, extra ? ' ' : null, extra);
}

function openThread(id: string | undefined): void {
  openId = id;
  threadError = '';
  composer = undefined;
  messenger?.setOpen(id);
  render();
}

function threadItem(m: Messenger, t: Thread): HTMLElement {
  const note = t.kind === 'session' ? (t.closed ? ' (closed)' : t.left ? ' (left)' : '') : '';
  return h('li', {},
    h('button', { class: `item ${openId === t.id ? 'active' : ''}`, testid: `thread-${t.id}`, onclick: () => openThread(t.id) },
      h('span', { class: 'title' }, m.title(t) + note),
      t.unread ? h('span', { class: 'badge', testid: 'unread' }, t.unread) : null,
      h('span', { class: 'preview' }, t.preview),
    ),
  );
}

/** Message requests: sessions strangers opened with you, with accept / ignore / block. */
function requestsSection(m: Messenger): HTMLElement | null {
  const reqs = m.requests();
  if (reqs.length === 0) return null;
  const err = h('p', { class: 'error', role: 'alert', testid: 'request-error' });
  const act = (b: HTMLButtonElement, f: () => Promise<unknown>) => async () => {
    err.textContent = '';
    b.disabled = true;
    try {
      await f();
    } catch (e) {
      err.textContent = describe(e);
      b.disabled = false;
    }
  };
  return h('section', { class: 'requests', testid: 'requests' },
    h('h3', {}, 'Message requests'),
    h('p', { class: 'small' }, 'People who are not your contacts. Nothing they send reaches your inbox until you accept; they do not learn whether you read it.'),
    h('ul', { class: 'list' }, ...reqs.map((r) => {
      const creator = r.verifiedCreator ?? r.creator; // the signed creator once known, not the node's word
      const others = (r.participants ?? [creator]).filter((p) => p !== m.me && p !== creator);
      const accept = h('button', { class: 'primary', testid: `accept-${r.session}` }, 'Accept');
      const ignore = h('button', { testid: `ignore-${r.session}` }, 'Ignore');
      const block = h('button', { class: 'danger', testid: `block-${r.session}` }, 'Block');
      accept.onclick = act(accept, async () => { openThread(await m.acceptRequest(r.session)); tab = 'chats'; });
      ignore.onclick = act(ignore, () => m.ignoreRequest(r.session));
      block.onclick = act(block, async () => {
        if (confirm(`Block ${shortId(creator)}? They will not be able to start sessions with you.`)) await m.blockRequest(r.session);
      });
      return h('li', { class: 'request', testid: `request-${r.session}` },
        h('div', { class: 'title mono', title: creator }, m.nameOf(creator), others.length ? ` and ${others.length} other${others.length > 1 ? 's' : ''}` : ''),
        h('div', { class: 'preview', testid: 'request-preview' }, r.preview ?? (r.previewError ? `Cannot open: ${r.previewError}` : r.status === 'active' ? '(no message yet)' : `(${r.status})`)),
        h('div', { class: 'row' }, accept, ignore, block),
      );
    })),
    err,
  );
}

function chatsTab(m: Messenger): HTMLElement {
  const sessions = m.threads().filter((t) => t.kind === 'session');
  const picks = m.state.contacts.filter((c) => !c.blocked).map((c) => ({ c, box: h('input', { type: 'checkbox', value: c.sessionId, testid: `pick-${c.sessionId}` }) }));
  const newChat = picks.length
    ? form('new-chat', [h('p', { class: 'small' }, 'Start a session with:'), ...picks.map(({ c, box }) => h('label', { class: 'check' }, box, ' ', c.name))], 'Start session', async (status) => {
        status('Creating the session on the chain…');
        const id = await m.startSession(picks.filter((p) => p.box.checked).map((p) => p.c.sessionId));
        openThread(id);
      })
    : h('p', { class: 'small' }, 'Add a contact to start a session.');
  return h('div', { class: 'tabbody' },
    requestsSection(m),
    h('ul', { class: 'list', testid: 'chat-list' }, ...sessions.map((t) => threadItem(m, t))),
    sessions.length ? null : h('p', { class: 'small' }, 'No conversations yet.'),
    h('details', { class: 'new', open: sessions.length === 0 }, h('summary', { testid: 'new-chat-toggle' }, 'New session'), newChat),
  );
}

function contactsTab(m: Messenger): HTMLElement {
  const idIn = h('input', { required: true, placeholder: '07…', spellcheck: 'false', autocomplete: 'off', testid: 'contact-id' });
  const nameIn = h('input', { placeholder: 'Name', autocomplete: 'off', testid: 'contact-name' });
  const trust = h('input', { type: 'checkbox', testid: 'contact-trust' });
  const err = h('p', { class: 'error', role: 'alert', testid: 'contact-error' });
  const act = (f: () => Promise<unknown>) => async (ev: Event) => {
    const b = ev.currentTarget as HTMLButtonElement;
    err.textContent = '';
    b.disabled = true;
    try {
      await f();
    } catch (e) {
      err.textContent = describe(e);
      b.disabled = false;
    }
  };
  const people = m.state.contacts.filter((c) => !c.blocked);
  const blocked = m.state.contacts.filter((c) => c.blocked);
  return h('div', { class: 'tabbody' },
    form('add-contact', [
      field('Session ID', idIn),
      field('Name', nameIn),
      h('label', { class: 'check' }, trust, ' Let them reach me without a request (public on chain)'),
    ], 'Add contact', async (status) => {
      status(trust.checked ? 'Adding the contact on the chain…' : 'Looking the identity up on the chain…');
      await m.addContact(idIn.value, nameIn.value, trust.checked);
      status('Added.');
    }),
    h('ul', { class: 'list', testid: 'contact-list' }, ...people.map((c) =>
      h('li', { class: 'contact', testid: `contact-${c.sessionId}` },
        h('span', { class: 'title' }, c.name, c.trusted ? h('span', { class: 'tag', title: 'their sessions skip the request step' }, 'trusted') : null),
        h('span', { class: 'mono small' }, shortId(c.sessionId)),
        h('div', { class: 'row start' },
          h('button', { class: 'link small', testid: `trust-${c.sessionId}`, onclick: act(() => m.setTrusted(c.sessionId, !c.trusted)) }, c.trusted ? 'Untrust' : 'Trust'),
          h('button', { class: 'link small danger', testid: `block-contact-${c.sessionId}`, onclick: act(async () => { if (confirm(`Block ${c.name}?`)) await m.block(c.sessionId); }) }, 'Block'),
        ),
      ))),
    err,
    blocked.length
      ? h('details', { class: 'new' }, h('summary', { testid: 'blocked-toggle' }, `Blocked (${blocked.length})`),
          h('ul', { class: 'list', testid: 'blocked-list' }, ...blocked.map((c) =>
            h('li', { class: 'contact', testid: `blocked-${c.sessionId}` },
              h('span', { class: 'mono small' }, c.sessionId),
              h('button', { class: 'link small', testid: `unblock-${c.sessionId}`, onclick: act(() => m.unblock(c.sessionId)) }, 'Unblock'),
            ))))
      : null,
  );
}

function channelsTab(m: Messenger): HTMLElement {
  const channels = m.threads().filter((t) => t.kind === 'channel');
  const nameIn = h('input', { required: true, maxlength: 64, placeholder: 'general', testid: 'channel-name' });
  const inviteOnly = h('input', { type: 'checkbox', testid: 'channel-invite-only' });
  const idIn = h('input', { required: true, placeholder: 'Channel ID', spellcheck: 'false', testid: 'channel-id' });
  return h('div', { class: 'tabbody' },
    h('ul', { class: 'list', testid: 'channel-list' }, ...channels.map((t) => threadItem(m, t))),
    h('details', { class: 'new' }, h('summary', { testid: 'create-channel-toggle' }, 'Create a channel'),
      form('create-channel', [field('Name', nameIn), h('label', { class: 'check' }, inviteOnly, ' Invite only (members join by invitation)')], 'Create', async (status) => {
        status('Creating the channel on the chain…');
        openThread(await m.createChannel(nameIn.value, inviteOnly.checked ? JoinPolicy.InviteOnly : JoinPolicy.Open));
      })),
    h('details', { class: 'new' }, h('summary', { testid: 'join-channel-toggle' }, 'Join a channel'),
      form('join-channel', [field('Channel ID', idIn)], 'Join', async (status) => {
        if (!isID(idIn.value.trim())) throw new UserError('That is not a channel ID.');
        status('Joining…');
        openThread(await m.joinChannel(idIn.value));
      })),
  );
}

/** Loaded channel details (members and roles), by channel. */
const details = new Map<string, ChannelDetails>();

const loading = new Set<string>();
const loadedAt = new Map<string, number>();
/** An open panel reloads its members at most this often, on the next change. */
const DETAILS_MAX_AGE_MS = 10_000;

function loadDetails(m: Messenger, id: string): void {
  loading.add(id);
  void m.channelDetails(id).then(
    (d) => {
      loading.delete(id);
      details.set(id, d);
      loadedAt.set(id, Date.now());
      render();
    },
    (e) => {
      loading.delete(id);
      showThreadError(e);
    },
  );
}

/** The owner's and moderators' panel: policy, invites, members with their roles, bans. */
function managePanel(m: Messenger, ch: ChannelInfo): HTMLElement {
  const d = details.get(ch.id);
  const isOwner = ch.owner === m.me;
  const inviteIn = h('input', { placeholder: '07… (Session ID)', spellcheck: 'false', autocomplete: 'off', testid: 'invite-id' });
  const unbanIn = h('input', { placeholder: '07… (Session ID)', spellcheck: 'false', autocomplete: 'off', testid: 'unban-id' });
  const after = () => loadDetails(m, ch.id);
  const doIt = (f: () => Promise<unknown>) => () => action(async () => { await f(); after(); });
  const body = d
    ? [
        h('p', { class: 'small', testid: 'channel-counts' }, `${d.memberCount} members, ${d.inviteCount} invites outstanding, ${d.banCount} banned. Policy: ${d.joinPolicy}.`),
        isOwner
          ? h('button', {
              testid: 'policy-toggle',
              onclick: doIt(() => m.setChannelPolicy(ch.id, d.joinPolicy === 'open' ? JoinPolicy.InviteOnly : JoinPolicy.Open)),
            }, d.joinPolicy === 'open' ? 'Make invite-only' : 'Make open')
          : null,
        h('div', { class: 'inline-form' }, inviteIn, h('button', { testid: 'invite-submit', onclick: doIt(() => m.moderate(ch.id, ModerationAction.Invite, [inviteIn.value])) }, 'Invite')),
        h('ul', { class: 'list members', testid: 'member-list' }, ...d.members.map((x) => {
          const canAct = x.role !== 'owner' && x.sessionId !== m.me && (isOwner || x.role === 'member');
          return h('li', { class: 'member', testid: `member-${x.sessionId}` },
            h('span', { class: 'title' }, m.nameOf(x.sessionId), ' ', h('span', { class: 'tag', testid: 'member-role' }, x.role)),
            canAct
              ? h('span', { class: 'row start' },
                  isOwner
                    ? h('button', {
                        class: 'link small',
                        testid: `mod-${x.sessionId}`,
                        onclick: doIt(() => m.moderate(ch.id, x.role === 'moderator' ? ModerationAction.RevokeModerator : ModerationAction.MakeModerator, [x.sessionId])),
                      }, x.role === 'moderator' ? 'Revoke moderator' : 'Make moderator')
                    : null,
                  h('button', { class: 'link small', testid: `remove-${x.sessionId}`, onclick: doIt(() => m.moderate(ch.id, ModerationAction.Remove, [x.sessionId])) }, 'Remove'),
                  h('button', { class: 'link small danger', testid: `ban-${x.sessionId}`, onclick: doIt(() => m.moderate(ch.id, ModerationAction.Ban, [x.sessionId])) }, 'Ban'),
                )
              : null,
          );
        })),
        h('div', { class: 'inline-form' }, unbanIn, h('button', { testid: 'unban-submit', onclick: doIt(() => m.moderate(ch.id, ModerationAction.Unban, [unbanIn.value])) }, 'Unban')),
      ]
    : [h('p', { class: 'small' }, 'Loading members…')];
  const refresh = h('button', { class: 'link small', testid: 'manage-refresh', onclick: () => after() }, 'Refresh');
  const panel = h('details', { class: 'manage' }, h('summary', { testid: 'manage-toggle' }, 'Manage'), ...body, d ? refresh : null);
  // Loaded once when first opened (render restores the open state, which fires toggle again), then after each action.
  panel.addEventListener('toggle', () => {
    if (!panel.open || loading.has(ch.id)) return;
    if (!details.has(ch.id) || Date.now() - (loadedAt.get(ch.id) ?? 0) > DETAILS_MAX_AGE_MS) after();
  });
  return panel;
}

function threadView(m: Messenger, id: string): HTMLElement {
  const t = m.thread(id);
  if (!t) return h('section', { class: 'thread empty' }, 'Unknown conversation.');
  const isMod = t.kind === 'channel' && (t.owner === m.me || t.role === 'moderator' || t.role === 'owner');
  const list = h('ol', { class: 'messages', testid: 'messages' });
  void m.history(id).then((hist) => {
    for (const it of hist) {
      const mine = it.author === m.me;
      const canDelete = t.kind === 'channel' && (mine || isMod);
      list.append(h('li', { class: `msg ${mine ? 'mine' : ''} ${it.error ? 'bad' : ''}`, testid: 'message' },
        mine ? null : h('span', { class: 'who' }, m.nameOf(it.author)),
        h('span', { class: 'text', testid: 'message-text' }, it.text ?? `Cannot open this message: ${it.error}`),
        h('span', { class: 'meta' },
          canDelete
            ? h('button', { class: 'link tiny', testid: 'delete-post', title: 'Delete this post', onclick: () => confirm('Delete this post for everyone?') && action(() => m.deletePost(id, it.seq)) }, 'Delete')
            : null,
          h('time', {}, formatTime(it.ts))),
      ));
    }
    for (const p of m.pending.get(id) ?? []) {
      list.append(h('li', { class: 'msg mine pending', testid: 'pending' }, h('span', { class: 'text' }, p.text), h('time', {}, 'sending…')));
    }
    list.scrollTop = list.scrollHeight;
  });
  if (!composer || composerFor !== id) {
    composer = h('textarea', { rows: 1, placeholder: 'Message', testid: 'composer', maxlength: 4000 });
    composerFor = id;
    composer.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey) {
        e.preventDefault();
        root.querySelector<HTMLButtonElement>('[data-testid="send"]')?.click();
      }
    });
  }
  const c = composer;
  const err = h('p', { class: 'error', role: 'alert', testid: 'send-error' }, threadError);
  const sendButton = h('button', {
    class: 'primary',
    testid: 'send',
    onclick: async () => {
      const text = c.value;
      if (!text.trim()) return;
      c.value = '';
      threadError = '';
      try {
        await m.send(id, text);
      } catch (e) {
        c.value = text;
        showThreadError(e);
      }
    },
  }, 'Send');
  const closed = t.kind === 'session' && t.closed;
  let who: string;
  let note: HTMLElement | null = null;
  let mode: HTMLElement | null = null;
  let manage: (HTMLElement | null)[];
  if (t.kind === 'session') {
    who = t.participants.map((p) => m.nameOf(p)).join(', ');
    mode = h('p', { class: 'small', testid: 'thread-mode', title: t.protocol ? 'Keys are deleted once used: a stolen device does not open past messages.' : 'Sealed to every participant: sender-authenticated, but a stolen key opens the history on chain.' },
      t.protocol ? 'forward secret: keys are deleted once used' : 'Seal: not forward secret (a participant has no prekeys)');
    const waiting = t.participants.filter((p, i) => p !== m.me && t.states?.[i] === 'pending');
    if (t.left) note = h('p', { class: 'note', testid: 'left-note' }, 'You left this session: its messages no longer reach your inbox. Sending accepts it again.');
    else if (waiting.length) {
      note = h('p', { class: 'note', testid: 'pending-note' },
        `Waiting for ${waiting.map((p) => m.nameOf(p)).join(', ')} to accept your request. Until then your messages do not reach their inbox.`);
    }
    manage = closed
      ? [h('span', { class: 'small', testid: 'closed' }, 'closed')]
      : [
          t.left ? null : h('button', { class: 'link small', testid: 'leave-session', onclick: () => confirm('Leave this session? Its messages will no longer reach you.') && action(() => m.leaveSession(id)) }, 'Leave'),
          h('button', { class: 'link small', testid: 'close-session', onclick: () => confirm('Close this session for everyone?') && action(() => m.closeSession(id)) }, 'Close'),
        ];
  } else {
    who = `channel ${t.id}`;
    mode = h('p', { class: 'small', testid: 'thread-mode', title: 'Who is a member is the node\'s word (nothing members sign proves it): a dishonest node can add a reader to what you post.' },
      'Seal to the members the node lists: not forward secret, and only as private as the node is honest');
    note = h('p', { class: 'small', testid: 'channel-policy' }, `${t.joinPolicy ?? 'open'} · you are ${t.owner === m.me ? 'the owner' : t.role === 'moderator' ? 'a moderator' : 'a member'}`);
    manage = [t.owner === m.me ? null : h('button', { class: 'link small', testid: 'leave-channel', onclick: () => confirm('Leave this channel?') && action(async () => { await m.leaveChannel(id); openThread(undefined); }) }, 'Leave')];
  }
  const strangers = t.kind === 'session' ? t.participants.filter((p) => p !== m.me && !m.contact(p)) : [];
  const addButtons = strangers.map((p) =>
    h('button', {
      class: 'link small',
      testid: `add-${p}`,
      title: p,
      onclick: async () => {
        const name = prompt(`Name for ${p}`, '');
        if (name === null) return;
        await action(() => m.addContact(p, name));
      },
    }, `Add ${shortId(p)} to contacts`));
  return h('section', { class: 'thread', testid: 'thread' },
    h('div', { class: 'thread-head' },
      h('button', { class: 'link back', testid: 'back', onclick: () => openThread(undefined) }, '‹ Back'),
      h('div', { class: 'grow' }, h('h2', { testid: 'thread-title' }, m.title(t)), h('p', { class: 'small mono wrap', testid: 'thread-id' }, who), mode, ...addButtons),
      ...manage,
    ),
    note,
    isMod && t.kind === 'channel' ? managePanel(m, t) : null,
    list,
    closed ? h('p', { class: 'composer small' }, 'This session is closed.') : h('div', { class: 'composer' }, c, sendButton),
    err,
  );
}

void start();

//! The encryption of a backup file: AES-256-GCM over a stream of chunks, so
//! that a workspace of any size is encrypted and decrypted without ever
//! sitting in memory whole.
//!
//! ```text
//! header  magic "EXOCLAWB" (8) | format version (1) | key id (8)
//!         | nonce prefix (7, random per file) | chunk size (u32 BE)
//! frame*  flag (1: 0 = more follow, 1 = final) | length (u32 BE) | ciphertext + tag
//! ```
//!
//! Each frame's nonce is `prefix | counter (u32 BE) | flag` (the STREAM
//! construction of Hoang, Reyhanitabar, Rogaway and Vizár), and the whole
//! header is every frame's associated data. So a changed bit anywhere, a
//! frame moved or dropped, a non-final frame passed off as final (a cut at a
//! frame boundary) or data appended after the final frame all fail, each
//! with its own [`CryptError`]. Plaintext of a frame is released only after
//! its tag checked; callers still treat nothing as valid before the reader
//! reports the end (the final frame), which is when the whole file is.
//!
//! The key ([`BackupKey`]) is `EXOCLAW_BACKUP_KEY` or derived from the vault
//! key with HKDF-SHA256 and an info string of its own, never the vault key
//! itself; the header carries only its fingerprint.

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use sha2::{Digest as _, Sha256};
use std::io::{self, Read, Write};
use zeroize::Zeroizing;

/// The first bytes of every backup file.
pub const MAGIC: &[u8; 8] = b"EXOCLAWB";
/// The format this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
const KEY_ID_LEN: usize = 8;
const PREFIX_LEN: usize = 7;
/// Bytes of the header.
pub const HEADER_LEN: usize = MAGIC.len() + 1 + KEY_ID_LEN + PREFIX_LEN + 4;
const TAG_LEN: usize = 16;
/// Flag byte + length.
const FRAME_HEAD_LEN: usize = 5;
const MORE: u8 = 0;
const FINAL: u8 = 1;
/// Plaintext bytes per frame that [`EncryptWriter::new`] uses.
pub const DEFAULT_CHUNK: usize = 64 * 1024;
/// The chunk sizes a reader accepts (anything else is a damaged header).
const CHUNK_RANGE: std::ops::RangeInclusive<usize> = 16..=(16 * 1024 * 1024);
/// Domain separation for key fingerprints and the HKDF derivation.
const KEY_ID_DOMAIN: &[u8] = b"exoclaw-backup-key-id-v1\0";
const HKDF_SALT: &[u8] = b"exoclaw-backup-v1";
const HKDF_INFO: &[u8] = b"exoclaw backup encryption key";

/// Where the backup key came from (named in messages, never the key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// `EXOCLAW_BACKUP_KEY`.
    BackupKey,
    /// HKDF-SHA256 of `EXOCLAW_ENCRYPTION_KEY` (the vault key).
    VaultKey,
}

impl KeySource {
    pub fn describe(self) -> &'static str {
        match self {
            KeySource::BackupKey => "EXOCLAW_BACKUP_KEY",
            KeySource::VaultKey => "derived from EXOCLAW_ENCRYPTION_KEY",
        }
    }
}

/// The 32-byte backup key, wiped on drop. `Debug` shows only its id.
#[derive(Clone)]
pub struct BackupKey {
    bytes: Zeroizing<[u8; 32]>,
    source: KeySource,
}

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BackupKey({}, {})",
            self.key_id(),
            self.source.describe()
        )
    }
}

impl BackupKey {
    /// `EXOCLAW_BACKUP_KEY`: 64 hex characters (validated with the config;
    /// the error never echoes the value).
    pub fn from_hex(hex_key: &str) -> anyhow::Result<Self> {
        Ok(Self {
            bytes: decode_key(hex_key, "EXOCLAW_BACKUP_KEY")?,
            source: KeySource::BackupKey,
        })
    }

    /// Derived from the vault key (64 hex characters) with HKDF-SHA256.
    pub fn derive_from_vault_hex(vault_hex: &str) -> anyhow::Result<Self> {
        let ikm = decode_key(vault_hex, "EXOCLAW_ENCRYPTION_KEY")?;
        let mut bytes = Zeroizing::new([0u8; 32]);
        hkdf::Hkdf::<Sha256>::new(Some(HKDF_SALT), ikm.as_slice())
            .expand(HKDF_INFO, bytes.as_mut_slice())
            .map_err(|_| anyhow::anyhow!("HKDF cannot produce a 32-byte key"))?;
        Ok(Self {
            bytes,
            source: KeySource::VaultKey,
        })
    }

    pub fn source(&self) -> KeySource {
        self.source
    }

    /// The fingerprint written into every backup's header: 16 hex
    /// characters of a domain-separated SHA-256. Not the key.
    pub fn key_id(&self) -> String {
        hex::encode(self.key_id_bytes())
    }

    fn key_id_bytes(&self) -> [u8; KEY_ID_LEN] {
        let digest = Sha256::new()
            .chain_update(KEY_ID_DOMAIN)
            .chain_update(self.bytes.as_slice())
            .finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        id
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.bytes.as_slice()))
    }
}

fn decode_key(hex_key: &str, var: &str) -> anyhow::Result<Zeroizing<[u8; 32]>> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    if hex_key.len() != 64 || hex::decode_to_slice(hex_key, bytes.as_mut_slice()).is_err() {
        anyhow::bail!("{var} must be 64 hex characters (generate one with `openssl rand -hex 32`)");
    }
    Ok(bytes)
}

/// Why a backup file cannot be read, each kind worded for the operator.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CryptError {
    #[error("not an exoclaw backup (the file does not start with the backup magic bytes)")]
    NotABackup,
    #[error(
        "backup format version {0} is not supported by this exoclaw (it reads version \
         {FORMAT_VERSION}); use the exoclaw release that made the backup"
    )]
    UnsupportedVersion(u8),
    #[error(
        "wrong key: this backup was encrypted with key id {expected}, but the configured key \
         ({key_source}) has key id {configured}; set EXOCLAW_BACKUP_KEY (or EXOCLAW_ENCRYPTION_KEY, \
         if the backup key was derived from it) to the key that made the backup"
    )]
    WrongKey {
        expected: String,
        configured: String,
        key_source: &'static str,
    },
    #[error(
        "the backup header was altered: its key id field does not match the key that encrypted \
         the file (the configured key opens it)"
    )]
    HeaderTampered,
    #[error("the backup header is damaged: {0}")]
    BadHeader(String),
    #[error(
        "the backup is truncated: it ends at byte {at}, before its final chunk; the copy is \
         incomplete (copy the file again)"
    )]
    Truncated { at: u64 },
    #[error(
        "the backup was altered or damaged: chunk {chunk} (at byte {at}) failed authentication \
         (bytes changed, or chunks reordered or removed)"
    )]
    Tampered { chunk: u32, at: u64 },
    #[error("the backup was altered or damaged: chunk {chunk} (at byte {at}) has an invalid frame")]
    BadFrame { chunk: u32, at: u64 },
    #[error("the backup was altered: there is data after its final chunk (at byte {at})")]
    TrailingData { at: u64 },
    #[error("the backup is too large for its format (more than 2^32 chunks)")]
    TooLarge,
    #[error("cannot read the backup: {0}")]
    Io(String),
}

impl CryptError {
    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }

    /// The `CryptError` inside an `io::Error` from a [`DecryptReader`],
    /// however deep a caller (the tar reader) wrapped it.
    pub fn find(e: &io::Error) -> Option<&CryptError> {
        let mut inner: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|e| e as _);
        while let Some(err) = inner {
            if let Some(c) = err.downcast_ref::<CryptError>() {
                return Some(c);
            }
            if let Some(io) = err.downcast_ref::<io::Error>()
                && let Some(c) = io.get_ref().and_then(|e| e.downcast_ref::<CryptError>())
            {
                return Some(c);
            }
            inner = err.source();
        }
        None
    }
}

fn nonce(prefix: &[u8; PREFIX_LEN], counter: u32, flag: u8) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..PREFIX_LEN].copy_from_slice(prefix);
    n[PREFIX_LEN..PREFIX_LEN + 4].copy_from_slice(&counter.to_be_bytes());
    n[11] = flag;
    n
}

fn header_bytes(
    key_id: &[u8; KEY_ID_LEN],
    prefix: &[u8; PREFIX_LEN],
    chunk: u32,
) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8] = FORMAT_VERSION;
    h[9..17].copy_from_slice(key_id);
    h[17..24].copy_from_slice(prefix);
    h[24..28].copy_from_slice(&chunk.to_be_bytes());
    h
}

/// Encrypts everything written to it into `inner`; call
/// [`EncryptWriter::finish`] to write the final frame (dropping the writer
/// without it leaves a file every reader reports as truncated).
pub struct EncryptWriter<W: Write> {
    inner: W,
    cipher: Aes256Gcm,
    header: [u8; HEADER_LEN],
    prefix: [u8; PREFIX_LEN],
    chunk: usize,
    counter: u32,
    buf: Vec<u8>,
}

impl<W: Write> EncryptWriter<W> {
    /// Writes the header (with a fresh random nonce prefix) to `inner`.
    pub fn new(inner: W, key: &BackupKey) -> io::Result<Self> {
        Self::with_chunk_size(inner, key, DEFAULT_CHUNK)
    }

    pub fn with_chunk_size(mut inner: W, key: &BackupKey, chunk: usize) -> io::Result<Self> {
        if !CHUNK_RANGE.contains(&chunk) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "chunk size out of range",
            ));
        }
        let mut prefix = [0u8; PREFIX_LEN];
        getrandom::fill(&mut prefix)
            .map_err(|e| io::Error::other(format!("no system randomness: {e}")))?;
        let size = u32::try_from(chunk).map_err(|_| io::Error::other("chunk size out of range"))?;
        let header = header_bytes(&key.key_id_bytes(), &prefix, size);
        inner.write_all(&header)?;
        Ok(Self {
            inner,
            cipher: key.cipher(),
            header,
            prefix,
            chunk,
            counter: 0,
            buf: Vec::with_capacity(chunk),
        })
    }

    fn emit(&mut self, flag: u8) -> io::Result<()> {
        let nonce = nonce(&self.prefix, self.counter, flag);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &self.buf,
                    aad: &self.header,
                },
            )
            .map_err(|_| io::Error::other("encryption failed"))?;
        let len = u32::try_from(sealed.len()).map_err(|_| CryptError::TooLarge.into_io())?;
        self.inner.write_all(&[flag])?;
        self.inner.write_all(&len.to_be_bytes())?;
        self.inner.write_all(&sealed)?;
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| CryptError::TooLarge.into_io())?;
        self.buf.clear();
        Ok(())
    }

    /// Writes the final frame and returns the inner writer (flushed).
    pub fn finish(mut self) -> io::Result<W> {
        self.emit(FINAL)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for EncryptWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            // A full buffer is sealed only once more data arrives: the last
            // chunk must go out with the final flag, from `finish`.
            if self.buf.len() == self.chunk {
                self.emit(MORE)?;
            }
            let n = rest.len().min(self.chunk - self.buf.len());
            self.buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Decrypts a backup file as it is read. Errors are `io::Error`s carrying a
/// [`CryptError`] (see [`CryptError::find`]); after one, every read fails the
/// same way. `Ok(0)` (the end) means the final frame authenticated and
/// nothing follows it: only then is the whole file proven intact.
pub struct DecryptReader<R: Read> {
    inner: R,
    cipher: Aes256Gcm,
    header: [u8; HEADER_LEN],
    prefix: [u8; PREFIX_LEN],
    chunk: usize,
    counter: u32,
    offset: u64,
    plain: Zeroizing<Vec<u8>>,
    pos: usize,
    done: bool,
    failed: Option<CryptError>,
}

impl<R: Read> DecryptReader<R> {
    /// Reads and checks the header; a key id that differs from `key`'s is
    /// told apart as a wrong key or an altered header by trying the first
    /// frame.
    pub fn new(mut inner: R, key: &BackupKey) -> Result<Self, CryptError> {
        let mut header = [0u8; HEADER_LEN];
        let got = read_full(&mut inner, &mut header)?;
        let magic_len = got.min(MAGIC.len());
        if header[..magic_len] != MAGIC[..magic_len] {
            return Err(CryptError::NotABackup);
        }
        if got < HEADER_LEN {
            return Err(CryptError::Truncated { at: got as u64 });
        }
        if header[8] != FORMAT_VERSION {
            return Err(CryptError::UnsupportedVersion(header[8]));
        }
        let chunk = u32::from_be_bytes([header[24], header[25], header[26], header[27]]);
        let chunk = usize::try_from(chunk).unwrap_or(usize::MAX);
        if !CHUNK_RANGE.contains(&chunk) {
            return Err(CryptError::BadHeader(format!(
                "chunk size {chunk} is out of range"
            )));
        }
        let mut prefix = [0u8; PREFIX_LEN];
        prefix.copy_from_slice(&header[17..24]);
        let mut reader = Self {
            inner,
            cipher: key.cipher(),
            header,
            prefix,
            chunk,
            counter: 0,
            offset: HEADER_LEN as u64,
            plain: Zeroizing::new(Vec::new()),
            pos: 0,
            done: false,
            failed: None,
        };
        let ours = key.key_id_bytes();
        if header[9..17] != ours {
            let expected = hex::encode(&header[9..17]);
            // With our key id put back, does our key open the first frame?
            reader.header[9..17].copy_from_slice(&ours);
            return Err(match reader.next_frame() {
                Ok(()) => CryptError::HeaderTampered,
                Err(CryptError::Tampered { .. } | CryptError::BadFrame { .. }) => {
                    CryptError::WrongKey {
                        expected,
                        configured: key.key_id(),
                        key_source: key.source.describe(),
                    }
                }
                Err(other) => other,
            });
        }
        Ok(reader)
    }

    /// Reads, checks and decrypts the next frame into `plain`.
    fn next_frame(&mut self) -> Result<(), CryptError> {
        let at = self.offset;
        let chunk_no = self.counter;
        let mut head = [0u8; FRAME_HEAD_LEN];
        let got = read_full(&mut self.inner, &mut head)?;
        self.offset += got as u64;
        if got < FRAME_HEAD_LEN {
            return Err(CryptError::Truncated { at: self.offset });
        }
        let flag = head[0];
        let len = usize::try_from(u32::from_be_bytes([head[1], head[2], head[3], head[4]]))
            .unwrap_or(usize::MAX);
        let full = self.chunk + TAG_LEN;
        let valid = match flag {
            MORE => len == full,
            FINAL => (TAG_LEN..=full).contains(&len),
            _ => false,
        };
        if !valid {
            return Err(CryptError::BadFrame {
                chunk: chunk_no,
                at,
            });
        }
        let mut sealed = vec![0u8; len];
        let got = read_full(&mut self.inner, &mut sealed)?;
        self.offset += got as u64;
        if got < len {
            return Err(CryptError::Truncated { at: self.offset });
        }
        let nonce = nonce(&self.prefix, chunk_no, flag);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &sealed,
                    aad: &self.header,
                },
            )
            .map_err(|_| CryptError::Tampered {
                chunk: chunk_no,
                at,
            })?;
        self.counter = self.counter.checked_add(1).ok_or(CryptError::TooLarge)?;
        self.plain = Zeroizing::new(plain);
        self.pos = 0;
        if flag == FINAL {
            let mut probe = [0u8; 1];
            if read_full(&mut self.inner, &mut probe)? > 0 {
                return Err(CryptError::TrailingData { at: self.offset });
            }
            self.done = true;
        }
        Ok(())
    }

    /// The error that stopped reading, if any (it is sticky).
    pub fn failure(&self) -> Option<&CryptError> {
        self.failed.as_ref()
    }
}

impl<R: Read> Read for DecryptReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.plain.len() {
                let n = out.len().min(self.plain.len() - self.pos);
                out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if let Some(e) = &self.failed {
                return Err(e.clone().into_io());
            }
            if self.done || out.is_empty() {
                return Ok(0);
            }
            if let Err(e) = self.next_frame() {
                self.failed = Some(e.clone());
                return Err(e.into_io());
            }
        }
    }
}

/// Reads until `buf` is full or the end; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, CryptError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CryptError::Io(e.to_string())),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests;

//! The framing of backup files: round trips of every size around the chunk
//! boundary, and one distinct error per kind of damage.

use super::*;

const CHUNK: usize = 64;
const KEY_A: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const KEY_B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

fn key(hex: &str) -> BackupKey {
    BackupKey::from_hex(hex).unwrap()
}

fn seal(plain: &[u8], key: &BackupKey) -> Vec<u8> {
    let mut w = EncryptWriter::with_chunk_size(Vec::new(), key, CHUNK).unwrap();
    // Odd write sizes exercise the buffering.
    for piece in plain.chunks(7) {
        w.write_all(piece).unwrap();
    }
    w.finish().unwrap()
}

fn open(file: &[u8], key: &BackupKey) -> Result<Vec<u8>, CryptError> {
    let mut r = DecryptReader::new(file, key)?;
    let mut out = Vec::new();
    match r.read_to_end(&mut out) {
        Ok(_) => Ok(out),
        Err(e) => Err(CryptError::find(&e).cloned().expect("a CryptError")),
    }
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// Byte offsets of each frame of a sealed file (start of its flag byte).
fn frames(file: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = HEADER_LEN;
    while at < file.len() {
        let len = u32::from_be_bytes([file[at + 1], file[at + 2], file[at + 3], file[at + 4]]);
        let end = at + FRAME_HEAD_LEN + len as usize;
        out.push((at, end));
        at = end;
    }
    out
}

#[test]
fn round_trips_around_the_chunk_boundary() {
    let k = key(KEY_A);
    for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5] {
        let plain = data(n);
        let file = seal(&plain, &k);
        assert_eq!(&file[..8], MAGIC);
        assert_eq!(open(&file, &k).unwrap(), plain, "size {n}");
        let expected_frames = n.div_ceil(CHUNK).max(1);
        assert_eq!(frames(&file).len(), expected_frames, "size {n}");
    }
}

#[test]
fn nonces_differ_per_file() {
    let k = key(KEY_A);
    let a = seal(b"same", &k);
    let b = seal(b"same", &k);
    assert_ne!(a, b, "a fresh nonce prefix per file");
}

#[test]
fn the_derived_key_is_not_the_vault_key_and_is_stable() {
    let derived = BackupKey::derive_from_vault_hex(KEY_A).unwrap();
    let direct = key(KEY_A);
    assert_ne!(derived.key_id(), direct.key_id());
    assert_eq!(
        derived.key_id(),
        BackupKey::derive_from_vault_hex(KEY_A).unwrap().key_id()
    );
    assert_eq!(derived.key_id().len(), 16);
    assert!(!format!("{derived:?}").contains(KEY_A));
    let err = BackupKey::from_hex("abc").unwrap_err().to_string();
    assert!(err.contains("64 hex") && !err.contains("abc"), "{err}");
}

#[test]
fn a_wrong_key_names_both_key_ids() {
    let file = seal(&data(200), &key(KEY_A));
    let err = open(&file, &key(KEY_B)).unwrap_err();
    let CryptError::WrongKey {
        expected,
        configured,
        ..
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(expected, &key(KEY_A).key_id());
    assert_eq!(configured, &key(KEY_B).key_id());
    let msg = err.to_string();
    assert!(
        msg.contains(expected.as_str()) && msg.contains(configured.as_str()),
        "{msg}"
    );
}

#[test]
fn truncation_is_named_as_such() {
    let k = key(KEY_A);
    let file = seal(&data(3 * CHUNK + 5), &k);
    let f = frames(&file);
    // The final frame dropped: the file ends at a frame boundary.
    let at_boundary = &file[..f[f.len() - 1].0];
    assert!(matches!(
        open(at_boundary, &k),
        Err(CryptError::Truncated { .. })
    ));
    // Cut inside a frame, inside a frame head, inside the header.
    for cut in [f[1].0 + 20, f[1].0 + 2, 20, HEADER_LEN] {
        let r = open(&file[..cut], &k);
        assert!(
            matches!(r, Err(CryptError::Truncated { .. })),
            "cut {cut}: {r:?}"
        );
    }
}

#[test]
fn every_flipped_byte_fails() {
    let k = key(KEY_A);
    let file = seal(&data(2 * CHUNK + 9), &k);
    for i in 0..file.len() {
        let mut bad = file.clone();
        bad[i] ^= 0x01;
        let r = open(&bad, &k);
        assert!(r.is_err(), "flipping byte {i} went unnoticed");
    }
}

#[test]
fn flipped_bytes_are_named_by_where_they_are() {
    let k = key(KEY_A);
    let file = seal(&data(2 * CHUNK + 9), &k);
    let f = frames(&file);
    let flip = |i: usize| {
        let mut bad = file.clone();
        bad[i] ^= 0x40;
        open(&bad, &k).unwrap_err()
    };
    assert_eq!(flip(0), CryptError::NotABackup);
    assert_eq!(
        flip(8),
        CryptError::UnsupportedVersion(FORMAT_VERSION ^ 0x40)
    );
    assert_eq!(flip(10), CryptError::HeaderTampered);
    assert!(
        matches!(flip(18), CryptError::Tampered { chunk: 0, .. }),
        "nonce prefix"
    );
    assert!(matches!(flip(24), CryptError::BadHeader(_)), "chunk size");
    assert!(matches!(
        flip(f[1].0 + 30),
        CryptError::Tampered { chunk: 1, .. }
    ));
    let last = f.len() - 1;
    let in_last = flip(f[last].1 - 3);
    assert!(matches!(in_last, CryptError::Tampered { chunk, .. } if chunk as usize == last));
    assert!(
        matches!(flip(f[last].0), CryptError::BadFrame { .. }),
        "final flag"
    );
}

#[test]
fn reordered_dropped_and_appended_chunks_fail() {
    let k = key(KEY_A);
    let file = seal(&data(3 * CHUNK + 1), &k);
    let f = frames(&file);
    let piece = |i: usize| &file[f[i].0..f[i].1];
    let header = &file[..HEADER_LEN];

    let swapped = [header, piece(1), piece(0), piece(2), piece(3)].concat();
    assert!(matches!(
        open(&swapped, &k),
        Err(CryptError::Tampered { chunk: 0, .. })
    ));
    let dropped = [header, piece(0), piece(2), piece(3)].concat();
    assert!(matches!(
        open(&dropped, &k),
        Err(CryptError::Tampered { chunk: 1, .. })
    ));
    let appended = [&file[..], b"x"].concat();
    assert!(matches!(
        open(&appended, &k),
        Err(CryptError::TrailingData { .. })
    ));
    let repeated = [&file[..], piece(3)].concat();
    assert!(matches!(
        open(&repeated, &k),
        Err(CryptError::TrailingData { .. })
    ));
    // A frame from another file (same key, other nonce prefix) is refused.
    let other = seal(&data(3 * CHUNK + 1), &k);
    let g = frames(&other);
    let spliced = [header, piece(0), &other[g[1].0..g[1].1], piece(2), piece(3)].concat();
    assert!(matches!(
        open(&spliced, &k),
        Err(CryptError::Tampered { chunk: 1, .. })
    ));
}

#[test]
fn errors_stay_after_the_first() {
    let k = key(KEY_A);
    let mut file = seal(&data(3 * CHUNK), &k);
    let f = frames(&file);
    file[f[1].0 + 10] ^= 1;
    let mut r = DecryptReader::new(&file[..], &k).unwrap();
    let mut sink = Vec::new();
    let first = r.read_to_end(&mut sink).unwrap_err();
    let again = r.read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(CryptError::find(&first), CryptError::find(&again));
    assert_eq!(
        sink.len(),
        CHUNK,
        "only the authenticated first chunk came out"
    );
}

#[test]
fn not_a_backup_at_all() {
    let k = key(KEY_A);
    assert_eq!(open(b"", &k).unwrap_err(), CryptError::Truncated { at: 0 });
    assert_eq!(
        open(b"PK\x03\x04 a zip file", &k).unwrap_err(),
        CryptError::NotABackup
    );
}

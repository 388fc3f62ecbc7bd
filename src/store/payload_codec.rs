//! How a webhook body is stored: LZ4-compressed when that makes it clearly smaller, else as
//! received.
//!
//! Why: the group commit that answers Gitee writes every byte of every body to the WAL, syncs
//! it, and the checkpoint copies it again. A 7.4 KB push body is 2.4 KB compressed (3 µs to
//! compress, under 1 µs to expand): the event fits in one page instead of three overflow
//! pages, and a commit of 4 such events takes ≈ 30 % less time (`cargo bench --bench micro --
//! commit/`; see BENCHMARKS.md). The backlog on disk shrinks by as much.
//!
//! Format: a compressed body is `\0lz4`, its length as a little-endian u32, then one LZ4 block.
//! A body is JSON (the ingress refuses anything else), which never starts with a NUL byte, so
//! rows written before compression existed, and bodies not worth compressing, read back as
//! they are.

use super::StoreError;

const MAGIC: &[u8; 4] = b"\0lz4";
/// Magic and length: what [`body_len`] needs to see.
pub const HEAD_LEN: usize = MAGIC.len() + 4;
/// Bodies shorter than this are stored as they are: there is little to gain.
const MIN_LEN: usize = 256;

/// The bytes to store for `body`.
pub fn encode(body: &[u8]) -> Vec<u8> {
    // A 4 GiB body cannot be described by the u32 length (the ingress limit is far below).
    if body.len() < MIN_LEN || u32::try_from(body.len()).is_err() {
        return body.to_vec();
    }
    // Compressed straight behind its head, in one buffer (no second copy on the ingest path).
    let mut stored = vec![0; HEAD_LEN + lz4_flex::block::get_maximum_output_size(body.len())];
    stored[..MAGIC.len()].copy_from_slice(MAGIC);
    stored[MAGIC.len()..HEAD_LEN].copy_from_slice(&(body.len() as u32).to_le_bytes());
    let Ok(written) = lz4_flex::block::compress_into(body, &mut stored[HEAD_LEN..]) else {
        return body.to_vec();
    };
    stored.truncate(HEAD_LEN + written);
    // Only when it pays: at least an eighth smaller (random or already compressed text is not).
    if stored.len() <= body.len() - body.len() / 8 {
        stored
    } else {
        body.to_vec()
    }
}

/// The body as received, from the stored bytes.
pub fn decode(stored: Vec<u8>) -> Result<Vec<u8>, StoreError> {
    let Some(compressed) = stored.strip_prefix(MAGIC.as_slice()) else {
        return Ok(stored);
    };
    let corrupt = |why: &str| StoreError::Corrupt(format!("a stored payload is damaged: {why}"));
    let declared = declared_len(compressed).ok_or_else(|| corrupt("it ends in its header"))?;
    // LZ4 cannot expand a block more than 255-fold: a larger claim is damage, and must not
    // make us allocate it.
    if declared > compressed.len().saturating_mul(255) + 16 {
        return Err(corrupt("its length is impossible"));
    }
    lz4_flex::decompress_size_prepended(compressed).map_err(|e| corrupt(&e.to_string()))
}

/// The length of the body as received, from the first [`HEAD_LEN`] stored bytes (or fewer, for
/// a shorter row) and the stored length: what the admin API reports without reading whole
/// payloads.
pub fn body_len(head: &[u8], stored_len: i64) -> i64 {
    match head.strip_prefix(MAGIC.as_slice()).and_then(declared_len) {
        Some(len) => len as i64,
        None => stored_len,
    }
}

fn declared_len(after_magic: &[u8]) -> Option<usize> {
    let bytes: [u8; 4] = after_magic.get(..4)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push() -> Vec<u8> {
        crate::samples::find("push")
            .unwrap()
            .body
            .as_bytes()
            .to_vec()
    }

    #[test]
    fn a_push_body_is_stored_compressed_and_reads_back_exactly() {
        let body = push();
        let stored = encode(&body);
        assert!(stored.starts_with(MAGIC));
        assert!(
            stored.len() * 2 < body.len(),
            "{} of {}",
            stored.len(),
            body.len()
        );
        assert_eq!(
            body_len(&stored[..HEAD_LEN], stored.len() as i64),
            body.len() as i64
        );
        assert_eq!(decode(stored).unwrap(), body);
    }

    #[test]
    fn small_and_incompressible_bodies_are_stored_as_received() {
        let small = br#"{"hook_name":"push_hooks","ref":"refs/heads/main"}"#.to_vec();
        assert_eq!(encode(&small), small);
        // 4 KB that LZ4 cannot shrink by an eighth.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let noisy: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b'a' + (state % 26) as u8
            })
            .collect();
        assert_eq!(encode(&noisy), noisy);
        for body in [small, noisy] {
            assert_eq!(body_len(&body[..8], body.len() as i64), body.len() as i64);
            assert_eq!(decode(body.clone()).unwrap(), body);
        }
    }

    #[test]
    fn rows_written_before_compression_read_back_as_they_are() {
        let body = push();
        assert_eq!(decode(body.clone()).unwrap(), body);
        assert_eq!(
            body_len(&body[..HEAD_LEN], body.len() as i64),
            body.len() as i64
        );
        assert_eq!(decode(Vec::new()).unwrap(), Vec::<u8>::new());
        assert_eq!(body_len(b"", 0), 0);
    }

    #[test]
    fn damaged_rows_are_reported_not_panicked_on_nor_allocated() {
        let stored = encode(&push());
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("magic only", MAGIC.to_vec()),
            ("cut in its length", stored[..6].to_vec()),
            ("cut in its block", stored[..stored.len() / 2].to_vec()),
            ("claims 4 GiB", {
                let mut s = stored.clone();
                s[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
                s
            }),
            ("claims too little", {
                let mut s = stored.clone();
                s[4..8].copy_from_slice(&100u32.to_le_bytes());
                s
            }),
            ("garbled block", {
                let mut s = stored.clone();
                for b in &mut s[HEAD_LEN..HEAD_LEN + 64] {
                    *b = 0xff;
                }
                s
            }),
        ];
        for (what, bytes) in cases {
            match decode(bytes) {
                Err(StoreError::Corrupt(message)) => {
                    assert!(message.contains("damaged"), "{what}: {message}")
                }
                other => panic!("{what}: {other:?}"),
            }
        }
    }
}

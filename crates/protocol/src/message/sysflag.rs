//! SYSFLAG bits of a stored message (RocketMQ `MessageSysFlag`).

/// Body is compressed (see [`COMPRESSION_TYPE_MASK`] for the algorithm on 5.x).
pub const COMPRESSED: i32 = 0x1;
/// More than one tag (legacy).
pub const MULTI_TAGS: i32 = 0x2;
/// Mask of the two transaction-type bits.
pub const TRANSACTION_TYPE_MASK: i32 = 0xC;
/// Not a transactional message.
pub const TRANSACTION_NOT_TYPE: i32 = 0;
/// Half (prepared) transactional message.
pub const TRANSACTION_PREPARED_TYPE: i32 = 0x4;
/// Commit record of a transaction.
pub const TRANSACTION_COMMIT_TYPE: i32 = 0x8;
/// Rollback record of a transaction.
pub const TRANSACTION_ROLLBACK_TYPE: i32 = 0xC;
/// BORNHOST is IPv6 (20 bytes instead of 8).
pub const BORNHOST_V6: i32 = 0x10;
/// STOREHOST is IPv6 (20 bytes instead of 8).
pub const STOREHOSTADDRESS_V6: i32 = 0x20;
/// 5.x: inner message needs unwrapping.
pub const NEED_UNWRAP: i32 = 0x40;
/// 5.x: record is an auto-batch of inner messages.
pub const INNER_BATCH: i32 = 0x80;
/// 5.x: compression type bits (0 or 3 zlib, 1 LZ4, 2 ZSTD).
pub const COMPRESSION_TYPE_MASK: i32 = 0x700;
/// Shift of the compression-type bits.
pub const COMPRESSION_TYPE_SHIFT: u32 = 8;

/// The transaction type bits of `sys_flag`.
pub fn transaction_type(sys_flag: i32) -> i32 {
    sys_flag & TRANSACTION_TYPE_MASK
}

/// `sys_flag` with its transaction type replaced by `ty`.
pub fn with_transaction_type(sys_flag: i32, ty: i32) -> i32 {
    (sys_flag & !TRANSACTION_TYPE_MASK) | (ty & TRANSACTION_TYPE_MASK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_bits() {
        let f = with_transaction_type(COMPRESSED | BORNHOST_V6, TRANSACTION_ROLLBACK_TYPE);
        assert_eq!(f, 0x1D);
        assert_eq!(transaction_type(f), TRANSACTION_ROLLBACK_TYPE);
        assert_eq!(with_transaction_type(f, TRANSACTION_NOT_TYPE), 0x11);
    }
}

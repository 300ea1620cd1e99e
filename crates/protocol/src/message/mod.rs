//! The stored-message format: what the commitlog holds and what pull bodies carry.

//! Oomnitza (placeholder while the REST target builds).

//! jitgate

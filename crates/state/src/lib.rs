//! placeholder replaced by the state work

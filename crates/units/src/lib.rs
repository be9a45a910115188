//! placeholder replaced by the units work

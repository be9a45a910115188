//! placeholder replaced by the graph work

//! agentpod benchmarks.

fn main() {}

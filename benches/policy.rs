//! placeholder until the policy bench lands
fn main() {}

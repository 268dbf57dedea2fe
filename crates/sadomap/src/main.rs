//! The sadomap command line (being written).
fn main() {}

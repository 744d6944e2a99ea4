//! Criterion benchmark: compile time of the scenario files and the largest baseline.
fn main() {}

//! Integration tests of berth-storage: the conformance suite run against every backend, plus a kill -9 test.

mod conformance;
mod crash;

//! Support code for the integration tests: fixtures, runtime runners and leak checks.

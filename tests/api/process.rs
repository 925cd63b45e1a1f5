//! The real binary: signals, exit codes, bad flags, `kill -9`, and secrets in output.

//! Integration tests of exoclaw-guard: the injection corpora (exact rule
//! ids on attacks, silence on ordinary text) and the three primitives
//! working together the way the gateway uses them.

mod classifier;
mod corpus;
mod pipeline;

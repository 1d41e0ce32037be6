//! exoclaw storage (being written).

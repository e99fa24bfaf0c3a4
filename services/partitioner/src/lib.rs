//! sluice-partitioner (being written)

//! sluice-validator (being written)

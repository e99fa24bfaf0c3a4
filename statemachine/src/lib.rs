//! sluice-statemachine (being written)

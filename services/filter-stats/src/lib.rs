//! sluice-filter-stats (being written)

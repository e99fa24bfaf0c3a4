//! sluice-notifier (being written)

//! sluice-plotter (being written)

//! Archives: placeholder until save/load land.

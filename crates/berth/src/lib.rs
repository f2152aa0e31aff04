//! The berth CLI: argument parsing and output only. (Not built yet: issue 5.)

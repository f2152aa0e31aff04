//! Per-container monitor (conmon's role). (Not built yet: issue 5.)

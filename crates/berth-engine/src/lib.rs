//! SQLite state, spec generation, run/stop/rm/exec/logs/stats orchestration. (Not built yet: issue 5.)

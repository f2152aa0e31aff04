//! Static PID 1 that reaps zombies and forwards signals (tini's role). (Not built yet: issue 5.)
